"""Comparison of the identity a member typed with the registry, for triage and the agent's desk.

Names are compared after ``name_identity_key``: accents, case, ligatures, hyphens, apostrophes
and spacing do not count, nor a separator dropped or added inside a name ("Jean-Luc" is
"Jeanluc"). ``closeness`` is ``difflib.SequenceMatcher.ratio()`` on the normalised
strings (2 * matching characters / total characters, autojunk off): a one-letter typo in a
six-letter name gives about 0.83, unrelated names fall well under 0.5. Birth dates compare
exactly (closeness 1.0 or 0.0), except that a day and month given the other way round (same
year) gets 0.5, because "03/04" typed for "04/03" is a common slip worth pointing out to agents.
"""

from __future__ import annotations

import datetime
import difflib
import unicodedata
from dataclasses import dataclass
from typing import Any

from members.names import _is_mark, name_identity_key, normalise_name

__all__ = [
    "FieldComparison",
    "IdentityComparison",
    "closeness",
    "compare_identity",
    "diff_segments",
    "name_identity_key",
    "normalise_name",
]

LAST_NAME = "last_name"
FIRST_NAME = "first_name"
BIRTH_DATE = "birth_date"


def closeness(a: str, b: str) -> float:
    """Return the SequenceMatcher ratio (0..1) of two names, after normalise_name (idempotent)."""
    if name_identity_key(a) == name_identity_key(b):
        return 1.0
    left, right = normalise_name(a), normalise_name(b)
    return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()


def _date_closeness(submitted: datetime.date, registry: datetime.date) -> float:
    """Return 1.0 for equal dates, 0.5 for day and month swapped in the same year, else 0.0."""
    if submitted == registry:
        return 1.0
    if (
        submitted.year == registry.year
        and submitted.day == registry.month
        and submitted.month == registry.day
    ):
        return 0.5
    return 0.0


@dataclass(frozen=True)
class FieldComparison:
    """One compared field: the raw values on both sides, whether they agree, and how closely."""

    field: str
    submitted: str
    registry: str
    equal: bool
    closeness: float

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as a JSON-serialisable dict."""
        return {
            "field": self.field,
            "submitted": self.submitted,
            "registry": self.registry,
            "equal": self.equal,
            "closeness": self.closeness,
        }


@dataclass(frozen=True)
class IdentityComparison:
    """The comparison of last name, first name and birth date with the registry."""

    fields: tuple[FieldComparison, ...]

    def _field(self, name: str) -> FieldComparison | None:
        """Return the comparison of the named field, if present."""
        return next((field for field in self.fields if field.field == name), None)

    @property
    def matches(self) -> bool:
        """Tell whether every field agrees with the registry."""
        return all(field.equal for field in self.fields)

    @property
    def differing_fields(self) -> tuple[str, ...]:
        """Return the names of the fields that disagree with the registry, in order."""
        return tuple(field.field for field in self.fields if not field.equal)

    @property
    def names_swapped(self) -> bool:
        """Tell whether last and first names were typed the other way round (still a mismatch)."""
        last, first = self._field(LAST_NAME), self._field(FIRST_NAME)
        if last is None or first is None or (last.equal and first.equal):
            return False
        return name_identity_key(last.submitted) == name_identity_key(first.registry) and (
            name_identity_key(first.submitted) == name_identity_key(last.registry)
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as a JSON-serialisable dict, for the ticket's record."""
        return {
            "matches": self.matches,
            "differing_fields": list(self.differing_fields),
            "names_swapped": self.names_swapped,
            "fields": [field.as_dict() for field in self.fields],
        }


def _compare_name(field: str, submitted: str, registry: str) -> FieldComparison:
    """Compare one name field after normalisation."""
    equal = name_identity_key(submitted) == name_identity_key(registry)
    return FieldComparison(
        field=field,
        submitted=submitted,
        registry=registry,
        equal=equal,
        closeness=1.0 if equal else closeness(submitted, registry),
    )


def compare_identity(
    *,
    submitted_last_name: str,
    submitted_first_name: str,
    submitted_birth_date: datetime.date,
    registry_last_name: str,
    registry_first_name: str,
    registry_birth_date: datetime.date,
) -> IdentityComparison:
    """Compare what the member typed with the registry, field by field."""
    birth_closeness = _date_closeness(submitted_birth_date, registry_birth_date)
    return IdentityComparison(
        fields=(
            _compare_name(LAST_NAME, submitted_last_name, registry_last_name),
            _compare_name(FIRST_NAME, submitted_first_name, registry_first_name),
            FieldComparison(
                field=BIRTH_DATE,
                submitted=submitted_birth_date.isoformat(),
                registry=registry_birth_date.isoformat(),
                equal=submitted_birth_date == registry_birth_date,
                closeness=birth_closeness,
            ),
        )
    )


def _clusters(value: str) -> list[str]:
    """Split value into base characters each followed by its combining marks."""
    clusters: list[str] = []
    for char in value:
        if clusters and _is_mark(char):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _cluster_key(cluster: str) -> str:
    """Return the comparison key of a cluster: composed and case-folded."""
    return unicodedata.normalize("NFC", cluster).casefold()


def diff_segments(submitted: str, registry: str) -> list[tuple[str, bool]]:
    """Split the raw submitted value into (text, differs) segments against the registry value."""
    # Characters are compared as clusters (letter + its combining marks) so that "é" typed as
    # e + U+0301 is neither highlighted nor split in two; case is ignored, accents are not, so
    # the agent sees an accent difference even when the names compare as equal.
    left = _clusters(submitted)
    right = _clusters(registry)
    matcher = difflib.SequenceMatcher(
        None, [_cluster_key(c) for c in left], [_cluster_key(c) for c in right], autojunk=False
    )
    segments: list[tuple[str, bool]] = []
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if i1 == i2:
            # A pure insertion: characters missing from the submitted value have nothing to
            # highlight on this side; diff_segments(registry, submitted) shows them.
            continue
        text = "".join(left[i1:i2])
        differs = tag != "equal"
        if segments and segments[-1][1] == differs:
            segments[-1] = (segments[-1][0] + text, differs)
        else:
            segments.append((text, differs))
    return segments
