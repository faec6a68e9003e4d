"""Every translatable string has a French translation (English is the source language)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES" / "django.po"
# Folders that hold no string of ours (makemessages would otherwise scan the virtualenv).
IGNORED = [".venv", "var", "node_modules", "tests", "docs", "scripts", "benchmarks", "build"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{\{\s*(\w+)\s*\}\}")


@pytest.fixture(scope="module")
def merged_catalogue(tmp_path_factory: pytest.TempPathFactory) -> polib.POFile:
    """The committed French catalogue merged with every msgid the code holds today.

    makemessages writes into any `locale/` folder it walks past, so it runs in a scratch folder
    that links to the sources but not to `locale/`: the committed catalogue is only read. A
    string added to a template or module without a translation shows up as untranslated.
    """
    assert CATALOGUE.is_file(), (
        f"{CATALOGUE.relative_to(settings.BASE_DIR)} is missing: run `make messages` "
        "and translate every entry"
    )
    workdir = tmp_path_factory.mktemp("sources")
    base = Path(settings.BASE_DIR)
    for entry in base.iterdir():
        if entry.name in IGNORED or entry.name in ("locale", ".git") or entry.name.startswith("."):
            continue
        (workdir / entry.name).symlink_to(entry)
    target = workdir / "catalogue" / "fr" / "LC_MESSAGES" / "django.po"
    target.parent.mkdir(parents=True)
    shutil.copy(CATALOGUE, target)
    mp = pytest.MonkeyPatch()
    mp.chdir(workdir)
    try:
        with override_settings(LOCALE_PATHS=[workdir / "catalogue"]):
            call_command(
                "makemessages",
                locale=["fr"],
                ignore_patterns=[*IGNORED, "catalogue"],
                symlinks=True,
                no_obsolete=True,
                verbosity=0,
            )
    finally:
        mp.undo()
    return polib.pofile(str(target))


def _label(entry: polib.POEntry) -> str:
    where = ", ".join(f"{path}:{line}" for path, line in entry.occurrences[:2])
    return f"{entry.msgid!r} ({where})"


def test_the_french_catalogue_exists() -> None:
    assert CATALOGUE.is_file(), "locale/fr/LC_MESSAGES/django.po is missing: run `make messages`"


def test_the_catalogue_holds_the_strings_of_the_code(merged_catalogue: polib.POFile) -> None:
    msgids = {entry.msgid for entry in merged_catalogue}
    # A few strings every page and e-mail uses: if these are absent, extraction itself failed.
    assert {"Skip to content", "Help", "Temporary password:"} <= msgids


def test_every_string_is_translated_into_french(merged_catalogue: polib.POFile) -> None:
    missing = [_label(e) for e in merged_catalogue.untranslated_entries() if not e.obsolete]
    assert not missing, f"{len(missing)} string(s) without a French translation:\n" + "\n".join(
        missing
    )


def test_no_translation_is_fuzzy(merged_catalogue: polib.POFile) -> None:
    fuzzy = [_label(e) for e in merged_catalogue.fuzzy_entries() if not e.obsolete]
    assert not fuzzy, "fuzzy (unchecked) translations:\n" + "\n".join(fuzzy)


def test_translations_keep_their_placeholders(merged_catalogue: polib.POFile) -> None:
    broken = []
    for entry in merged_catalogue.translated_entries():
        expected = set(PLACEHOLDER.findall(entry.msgid + " " + (entry.msgid_plural or "")))
        forms = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in forms:
            if set(PLACEHOLDER.findall(text)) - expected or (
                not entry.msgid_plural and set(PLACEHOLDER.findall(text)) != expected
            ):
                broken.append(_label(entry))
    assert not broken, "placeholders differ between English and French:\n" + "\n".join(broken)
