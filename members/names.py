"""Name normalisation shared by the registry (search keys) and identity matching."""

from __future__ import annotations

import unicodedata

# Letters that NFKD does not decompose into a base letter plus marks, spelled the way French
# registries transliterate them ("Lætitia" is filed as "LAETITIA", "Łukasz" as "LUKASZ").
_LETTER_FOLDS = str.maketrans(
    {
        "œ": "oe",
        "æ": "ae",
        "ß": "ss",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "\u0131": "i",  # dotless i (Turkish), written as an escape: it looks like "i"
    }
)

# Punctuation that only joins or separates name parts: every Unicode dash (category Pd, plus
# the minus sign), apostrophes and their look-alikes, dots and underscores. Whitespace is
# handled by str.split(), which knows every Unicode space.
_APOSTROPHES = "'\u2019\u2018\u02bc`\u00b4\u02b9\u2032\uff07"
_SEPARATOR_CHARS = frozenset(_APOSTROPHES + "._\u2212")

# Safety net for the rare sequences whose case folding and decomposition feed each other.
_MAX_FOLD_ROUNDS = 4


def _is_mark(char: str) -> bool:
    """Tell whether char is a combining mark (accent, diacritic)."""
    return unicodedata.category(char).startswith("M")


def _fold(value: str) -> str:
    """Apply one round of decomposition, mark removal, case folding and letter folding."""
    decomposed = unicodedata.normalize("NFKD", value)
    # Format characters (zero-width space/joiners, BOM, soft hyphen, bidi marks) are invisible
    # when pasted, so they are dropped rather than turned into a space.
    kept = "".join(
        char for char in decomposed if not _is_mark(char) and unicodedata.category(char) != "Cf"
    )
    folded = unicodedata.normalize("NFKD", kept.casefold())
    folded = "".join(char for char in folded if not _is_mark(char))
    return folded.translate(_LETTER_FOLDS)


def _separators_to_spaces(value: str) -> str:
    """Replace dashes, apostrophes, dots and underscores by spaces."""
    return "".join(
        " " if char in _SEPARATOR_CHARS or unicodedata.category(char) == "Pd" else char
        for char in value
    )


def normalise_name(value: str) -> str:
    """Return a name folded for comparison: no accents, case, ligatures or punctuation spacing."""
    folded = value
    for _ in range(_MAX_FOLD_ROUNDS):
        refolded = _fold(folded)
        if refolded == folded:
            break
        folded = refolded
    return " ".join(_separators_to_spaces(folded).split())


def name_identity_key(value: str) -> str:
    """Return the key two names are the same person's name under: normalise_name without spaces.

    A separator (hyphen, apostrophe, space, dot) dropped or added inside a name does not make it
    another name: "Jean-Luc", "Jean Luc" and "Jeanluc", "O'Brien" and "OBrien" are one name
    (docs/product.md, identity matching). The letters and their order still count.
    """
    return normalise_name(value).replace(" ", "")
