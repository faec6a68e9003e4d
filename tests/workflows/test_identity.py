"""Tests of the identity comparison between a member's request and the registry."""

from __future__ import annotations

import datetime
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.identity import (
    FieldComparison,
    IdentityComparison,
    closeness,
    compare_identity,
    diff_segments,
    normalise_name,
)

BORN = datetime.date(1958, 3, 14)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("  Lœtitia-Zoë ", "loetitia zoe", id="ligature-hyphen-diaeresis-spaces"),
        pytest.param("O\u2019Brien", "o brien", id="curly-apostrophe"),
        pytest.param("O'Brien", "o brien", id="straight-apostrophe"),
        pytest.param("O\u02bc`\u00b4\u2018Brien", "o brien", id="apostrophe-variants"),
        pytest.param("Nguyễn", "nguyen", id="stacked-diacritics"),
        pytest.param("ŁUKASZ", "lukasz", id="l-stroke"),
        pytest.param("STRAßE", "strasse", id="sharp-s"),
        pytest.param("Søren Đorđević", "soren dordevic", id="o-slash-d-stroke"),
        pytest.param(
            "Jean\u2013Pierre\u2014Marc\u2011Henri", "jean pierre marc henri", id="dash-variants"
        ),
        pytest.param("J.-P._Dupont", "j p dupont", id="dots-underscores"),
        pytest.param("Du\u200bpont\ufeff", "dupont", id="zero-width-removed"),
        pytest.param("Le\u00a0\u2009 Gall", "le gall", id="nbsp-thin-space"),
        pytest.param("Rene\u0301", "rene", id="combining-acute"),
        pytest.param("", "", id="empty"),
        pytest.param(" -' ", "", id="only-separators"),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    """Names fold to lower-case ASCII-like words separated by single spaces."""
    assert normalise_name(raw) == expected


CASES = [
    # (submitted last, first, date), (registry last, first, date), differing fields, swapped
    pytest.param(("Dupont", "Marie", BORN), ("DUPONT", "MARIE", BORN), (), False, id="same"),
    pytest.param(("dupont", "marie", BORN), ("DUPONT", "MARIE", BORN), (), False, id="case"),
    pytest.param(("Lefèvre", "Hélène", BORN), ("LEFEVRE", "HELENE", BORN), (), False, id="accents"),
    pytest.param(
        ("Lefevre", "Helene", BORN), ("Lefèvre", "Hélène", BORN), (), False, id="accents-registry"
    ),
    pytest.param(
        ("Martin", "Jean-Pierre", BORN),
        ("MARTIN", "JEAN PIERRE", BORN),
        (),
        False,
        id="hyphen-vs-space",
    ),
    pytest.param(
        ("D\u2019Artagnan", "Charles", BORN),
        ("D'ARTAGNAN", "CHARLES", BORN),
        (),
        False,
        id="apostrophes",
    ),
    pytest.param(("O'Brien", "Sean", BORN), ("O BRIEN", "SEAN", BORN), (), False, id="o-brien"),
    pytest.param(
        ("Martin", "Lætitia", BORN), ("MARTIN", "LAETITIA", BORN), (), False, id="ligature-ae"
    ),
    pytest.param(("Œuvray", "Paul", BORN), ("OEUVRAY", "PAUL", BORN), (), False, id="ligature-oe"),
    pytest.param(
        ("Du\u200bpont", "Ma\u200drie", BORN),
        ("DUPONT", "MARIE", BORN),
        (),
        False,
        id="zero-width",
    ),
    pytest.param(
        ("Rene\u0301", "Zoe\u0308", BORN),
        ("René", "Zoë", BORN),
        (),
        False,
        id="combining-vs-precomposed",
    ),
    # A separator (hyphen, apostrophe, space) dropped or added inside a name: the same name.
    pytest.param(
        ("Dupont", "Jeanluc", BORN), ("DUPONT", "JEAN-LUC", BORN), (), False, id="hyphen-dropped"
    ),
    pytest.param(
        ("Dupont", "Jean-Luc", BORN), ("DUPONT", "JEANLUC", BORN), (), False, id="hyphen-added"
    ),
    pytest.param(("OBrien", "Sean", BORN), ("O'BRIEN", "SEAN", BORN), (), False, id="apos-dropped"),
    pytest.param(
        ("D'Artagnan", "Charles", BORN),
        ("DARTAGNAN", "CHARLES", BORN),
        (),
        False,
        id="apostrophe-added",
    ),
    pytest.param(("Le Gall", "Yann", BORN), ("LEGALL", "YANN", BORN), (), False, id="space-added"),
    pytest.param(
        ("Martin", "Anne Marie", BORN),
        ("MARTIN", "ANNEMARIE", BORN),
        (),
        False,
        id="space-in-first-name",
    ),
    pytest.param(
        ("OBrienLukasz", "Anne Sophie", BORN),
        ("O'Brien-Łukasz", "Anne-Sophie", BORN),
        (),
        False,
        id="several-separators-dropped",
    ),
    pytest.param(
        ("Jeanluc", "Dupont", BORN),
        ("DUPONT", "JEAN-LUC", BORN),
        ("last_name", "first_name"),
        True,
        id="swapped-with-a-dropped-hyphen",
    ),
    # Only separators are forgiven: a letter more or less is still a mismatch.
    pytest.param(
        ("Dupont", "Jeanlu", BORN),
        ("DUPONT", "JEAN-LUC", BORN),
        ("first_name",),
        False,
        id="hyphen-dropped-and-letter-missing",
    ),
    pytest.param(
        ("Marie", "Dupont", BORN),
        ("DUPONT", "MARIE", BORN),
        ("last_name", "first_name"),
        True,
        id="swapped-names",
    ),
    pytest.param(
        ("Dupond", "Marie", BORN), ("DUPONT", "MARIE", BORN), ("last_name",), False, id="typo"
    ),
    pytest.param(
        ("Dupont", "Marie", datetime.date(1962, 7, 2)),
        ("DUPONT", "MARIE", BORN),
        ("birth_date",),
        False,
        id="homonym-other-birth-date",
    ),
    pytest.param(
        ("Nguyen", "Thi", BORN),
        ("MARTIN", "JEAN", BORN),
        ("last_name", "first_name"),
        False,
        id="different-person",
    ),
]


@pytest.mark.parametrize(("submitted", "registry", "differing", "swapped"), CASES)
def test_compare_identity(
    submitted: tuple[str, str, datetime.date],
    registry: tuple[str, str, datetime.date],
    differing: tuple[str, ...],
    swapped: bool,
) -> None:
    """Each case matches or not, on the expected fields, with swapped names flagged."""
    result = compare_identity(
        submitted_last_name=submitted[0],
        submitted_first_name=submitted[1],
        submitted_birth_date=submitted[2],
        registry_last_name=registry[0],
        registry_first_name=registry[1],
        registry_birth_date=registry[2],
    )
    assert result.matches == (differing == ())
    assert result.differing_fields == differing
    assert result.names_swapped is swapped
    assert [field.field for field in result.fields] == ["last_name", "first_name", "birth_date"]
    for field in result.fields:
        assert field.equal == (field.closeness == 1.0)
        assert 0.0 <= field.closeness <= 1.0
    # The record stored on the ticket survives a JSON round trip unchanged.
    assert json.loads(json.dumps(result.as_dict())) == result.as_dict()


def compare(
    last: str, first: str, born: datetime.date, reg_last: str, reg_first: str
) -> IdentityComparison:
    """Compare against a registry entry born on BORN."""
    return compare_identity(
        submitted_last_name=last,
        submitted_first_name=first,
        submitted_birth_date=born,
        registry_last_name=reg_last,
        registry_first_name=reg_first,
        registry_birth_date=BORN,
    )


def test_one_letter_typo_is_close() -> None:
    """A one-letter typo is a mismatch, but a close one."""
    last = compare("Dupond", "Marie", BORN, "DUPONT", "MARIE").fields[0]
    assert not last.equal
    assert last.closeness > 0.8
    assert closeness("Dupond", "Dupont") > 0.8


def test_different_names_are_far() -> None:
    """Unrelated names get a low closeness."""
    result = compare("Nguyen", "Thi", BORN, "MARTIN", "JEAN")
    assert all(field.closeness < 0.5 for field in result.fields[:2])
    assert closeness("Nguyen", "Martin") < 0.5


def test_homonym_differs_on_birth_date_only() -> None:
    """Same names, other birth date: birth_date alone differs, with closeness 0.0."""
    result = compare("Dupont", "Marie", datetime.date(1962, 7, 2), "DUPONT", "MARIE")
    birth = result.fields[2]
    assert result.differing_fields == ("birth_date",)
    assert (birth.submitted, birth.registry, birth.closeness) == ("1962-07-02", "1958-03-14", 0.0)


def test_day_and_month_swapped_is_half_close() -> None:
    """Day and month typed the other way round give 0.5, still a mismatch."""
    born = datetime.date(1958, 3, 4)
    result = compare_identity(
        submitted_last_name="Dupont",
        submitted_first_name="Marie",
        submitted_birth_date=datetime.date(1958, 4, 3),
        registry_last_name="DUPONT",
        registry_first_name="MARIE",
        registry_birth_date=born,
    )
    assert result.differing_fields == ("birth_date",)
    assert result.fields[2].closeness == 0.5


def test_same_first_and_last_name_is_not_swapped() -> None:
    """Identical names on both sides are a match, not a swap."""
    assert not compare("Martin", "Martin", BORN, "MARTIN", "MARTIN").names_swapped


def test_swap_with_a_typo_is_not_flagged_as_swap() -> None:
    """Only an exact swap (after normalisation) is flagged."""
    result = compare("Marie", "Dupond", BORN, "DUPONT", "MARIE")
    assert not result.names_swapped
    assert not result.matches


def test_as_dict_shape() -> None:
    """as_dict gives the stored shape of the comparison."""
    result = compare("Marie", "Dupont", BORN, "DUPONT", "MARIE")
    data = result.as_dict()
    assert data["matches"] is False
    assert data["names_swapped"] is True
    assert data["differing_fields"] == ["last_name", "first_name"]
    assert data["fields"][0] == {
        "field": "last_name",
        "submitted": "Marie",
        "registry": "DUPONT",
        "equal": False,
        "closeness": result.fields[0].closeness,
    }


def test_comparisons_are_frozen() -> None:
    """Comparisons cannot be altered once made."""
    field = FieldComparison("last_name", "a", "a", True, 1.0)
    with pytest.raises(AttributeError):
        field.equal = False  # type: ignore[misc]


def test_closeness_of_equal_names_is_one() -> None:
    """Equal names, after normalisation, have closeness 1.0."""
    assert closeness("Lætitia", "LAETITIA") == 1.0
    assert closeness("", "") == 1.0


def test_diff_segments_marks_the_mistyped_letter() -> None:
    """A one-letter typo highlights exactly that letter."""
    assert diff_segments("Dupond", "DUPONT") == [("Dupon", False), ("d", True)]
    assert diff_segments("Mbrie", "MARIE") == [("M", False), ("b", True), ("rie", False)]


def test_diff_segments_identical() -> None:
    """An identical value, case aside, highlights nothing."""
    assert diff_segments("Dupont", "Dupont") == [("Dupont", False)]
    assert diff_segments("dupont", "DUPONT") == [("dupont", False)]
    assert diff_segments("", "DUPONT") == []


def test_diff_segments_keeps_combining_marks_with_their_letter() -> None:
    """e + U+0301 equals é and is never split from its letter."""
    assert diff_segments("Rene\u0301", "RENÉ") == [("Rene\u0301", False)]
    assert diff_segments("Rene\u0301", "RENE") == [("Ren", False), ("e\u0301", True)]


def test_diff_segments_extra_letter() -> None:
    """A letter the registry does not have is highlighted."""
    assert diff_segments("Duppont", "DUPONT") in (
        [("Du", False), ("p", True), ("pont", False)],
        [("Dup", False), ("p", True), ("ont", False)],
    )


@given(st.text())
def test_property_normalise_name_is_idempotent(value: str) -> None:
    """normalise_name never raises and applying it twice changes nothing."""
    once = normalise_name(value)
    assert normalise_name(once) == once
    assert once == once.strip()
    assert "  " not in once


@given(st.text(), st.text())
def test_property_diff_segments_rebuild_the_submitted_value(submitted: str, registry: str) -> None:
    """Segments are non-empty, alternate flags and join back into the raw submitted value."""
    segments = diff_segments(submitted, registry)
    assert "".join(text for text, _ in segments) == submitted
    assert all(text for text, _ in segments)
    assert all(a[1] != b[1] for a, b in itertools.pairwise(segments))
    assert 0.0 <= closeness(submitted, registry) <= 1.0
