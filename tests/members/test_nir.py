"""Tests of the NIR (French social-security number) validation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from hypothesis import given
from hypothesis import strategies as st

from members.nir import nir_is_valid, nir_key, normalise_nir, validate_nir

# Digits str.isdigit() accepts but a NIR never holds, built from code points to stay readable.
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))


def reference_key(body: str) -> int:
    """Compute the key independently of the module: 97 - (n mod 97), 2A as 19 and 2B as 18."""
    digits = body[:5] + {"2A": "19", "2B": "18"}.get(body[5:7], body[5:7]) + body[7:]
    return 97 - int(digits) % 97


def with_key(body: str) -> str:
    """Return body followed by its reference key on 2 digits."""
    return f"{body}{reference_key(body):02d}"


def error_code(value: object) -> str | None:
    """Return the ValidationError code validate_nir raises for value, or None if it passes."""
    try:
        validate_nir(value)  # type: ignore[arg-type]  # non-str inputs are tested on purpose
    except ValidationError as error:
        return error.code
    return None


# Bodies chosen to cover the structure: men and women, provisional numbers, unknown months,
# a birth abroad (99), overseas departments (97x), Corsica (2A, 2B).
VALID_BODIES = [
    pytest.param("1850578006084", id="man-yvelines"),
    pytest.param("2550814168025", id="woman-calvados"),
    pytest.param("2690599999999", id="woman-born-abroad"),
    pytest.param("1790297411001", id="man-reunion"),
    pytest.param("1839975012003", id="man-month-99-unknown"),
    pytest.param("2842075012003", id="woman-month-20-unknown"),
    pytest.param("1845075012003", id="man-month-50-unknown"),
    pytest.param("284022A004123", id="woman-corsica-2A"),
    pytest.param("179022B012345", id="man-corsica-2B"),
    pytest.param("3850575012003", id="provisional-3"),
    pytest.param("7850575012003", id="provisional-7"),
    pytest.param("8850575012003", id="provisional-8"),
]


def test_published_example_has_key_38() -> None:
    """The example printed on the French public-service pages validates with key 38."""
    assert nir_key("2550814168025") == 38
    assert nir_is_valid("2 55 08 14 168 025 38")


def test_corsican_literal_examples() -> None:
    """Corsican numbers use 19 for 2A and 18 for 2B, literal keys checked by hand."""
    assert nir_key("284022A004123") == 97 - 2840219004123 % 97 == 7
    assert nir_key("179022B012345") == 97 - 1790218012345 % 97 == 61
    assert nir_is_valid("284022A00412307")
    assert nir_is_valid("179022B01234561")
    assert nir_is_valid("2 84 02 2a 004 123 07")


@pytest.mark.parametrize("body", VALID_BODIES)
def test_valid_nir(body: str) -> None:
    """A well-formed body followed by its key validates, whatever its layout."""
    nir = with_key(body)
    assert nir_key(body) == reference_key(body)
    assert nir_is_valid(nir)
    assert error_code(nir) is None
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    assert nir_is_valid(spaced)
    assert nir_is_valid(spaced.replace(" ", "."))
    assert nir_is_valid(spaced.replace(" ", "-"))
    assert nir_is_valid(spaced.replace(" ", "\u00a0"))


@pytest.mark.parametrize("body", VALID_BODIES)
def test_wrong_key_is_a_key_error(body: str) -> None:
    """Every other key fails with the nir_key code."""
    good = reference_key(body)
    for key in range(100):
        if key != good:
            assert error_code(f"{body}{key:02d}") == "nir_key"


def test_corsica_key_differs_from_plain_digits() -> None:
    """A 2A number keyed as if the department were 20 is refused."""
    wrong = f"284022A004123{97 - 2842000004123 % 97:02d}"
    assert error_code(wrong) == "nir_key"


def test_mistyped_digit_is_a_key_error() -> None:
    """One changed digit in the body is caught by the key."""
    assert error_code("2550814168026" + "38") == "nir_key"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("255081416802538"[:-1], id="14-chars"),
        pytest.param("2550814168025380", id="16-chars"),
        pytest.param("255081416802", id="12-chars"),
        pytest.param("2550814168O2538", id="letter-O-for-zero"),
        pytest.param("ABCDEFGHIJKLMNO", id="letters"),
        pytest.param("2550814168025\x0038", id="nul-inside"),
        pytest.param("\x00" * 15, id="nul-only"),
        pytest.param("255081416802538".translate(FULLWIDTH), id="fullwidth-digits"),
        pytest.param("255081416802538".translate(ARABIC_INDIC), id="arabic-indic-digits"),
        pytest.param("25508141680" + "2".translate(FULLWIDTH) + "538", id="one-fullwidth-digit"),
        pytest.param("\u00b255081416802538", id="superscript-two"),
        pytest.param("5550814168025" + "00", id="sex-5"),
        pytest.param("0550814168025" + "00", id="sex-0"),
        pytest.param("2551314168025" + "00", id="month-13"),
        pytest.param("2550014168025" + "00", id="month-00"),
        pytest.param("2554314168025" + "00", id="month-43"),
        pytest.param("255082C168025" + "00", id="department-2C"),
        pytest.param("25508A2168025" + "00", id="department-A2"),
        pytest.param("2550814168025+8", id="sign-in-key"),
        pytest.param("+255081416802538", id="leading-plus"),
        pytest.param("2_550814168025_38", id="underscores"),
        pytest.param("2" * 10_000, id="10k-chars"),
    ],
)
def test_format_errors(value: str) -> None:
    """Anything that is not 13 structured ASCII characters plus 2 digits is a format error."""
    assert not nir_is_valid(value)
    assert error_code(value) == "nir_format"


@pytest.mark.parametrize("value", [None, 255081416802538, b"255081416802538", ["2"]])
def test_non_strings_are_format_errors(value: object) -> None:
    """A validator fed something else than text still answers with a ValidationError."""
    assert error_code(value) == "nir_format"


def test_normalise_nir() -> None:
    """Spaces (including non-breaking), dots and dashes go; letters are upper-cased."""
    assert normalise_nir(" 2 84.02-2a\u00a0004\u202f123 07 ") == "284022A00412307"


def test_nir_key_refuses_non_ascii_digits() -> None:
    """nir_key does not let int() read non-ASCII digits or signs."""
    for body in (
        "1850578006084".translate(FULLWIDTH),
        "+850578006084",
        "185057800608",
        "18505_8006084",
    ):
        with pytest.raises(ValueError, match="13 ASCII digits"):
            nir_key(body)


def test_errors_carry_lazy_messages() -> None:
    """Messages are lazy translations, so a French catalogue can translate them later."""
    for value in ("123", "2550814168025" + "39"):
        with pytest.raises(ValidationError) as caught:
            validate_nir(value)
        assert isinstance(caught.value.message, Promise)


digit = st.sampled_from("0123456789")


@st.composite
def nir_bodies(draw: st.DrawFn) -> str:
    """Draw a 13-character body with a valid NIR structure."""
    sex = draw(st.sampled_from("123478"))
    year = draw(st.integers(0, 99))
    month = draw(st.sampled_from([*range(1, 13), *range(20, 43), *range(50, 100)]))
    department = draw(
        st.one_of(st.sampled_from(["2A", "2B"]), st.integers(0, 99).map("{:02d}".format))
    )
    rest = "".join(draw(st.lists(digit, min_size=6, max_size=6)))
    return f"{sex}{year:02d}{month:02d}{department}{rest}"


@given(body=nir_bodies(), other=st.integers(0, 99))
def test_property_only_the_right_key_validates(body: str, other: int) -> None:
    """For any structured body, its key validates and every other 2-digit key fails."""
    key = reference_key(body)
    assert 1 <= key <= 97
    assert nir_is_valid(f"{body}{key:02d}")
    if other != key:
        assert not nir_is_valid(f"{body}{other:02d}")
        assert error_code(f"{body}{other:02d}") == "nir_key"


@given(
    value=st.one_of(st.text(), st.text(alphabet="0123456789 .-2ABab\x00\uff11\u0663", max_size=20))
)
def test_property_validate_nir_only_raises_validation_error(value: str) -> None:
    """Whatever the text, validate_nir passes or raises ValidationError with a known code."""
    assert error_code(value) in {None, "nir_format", "nir_key"}
    assert nir_is_valid(value) == (error_code(value) is None)
