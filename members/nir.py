"""Validation of the French social-security number (NIR), for retirees without an ID."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

__all__ = [
    "NIR_LENGTH",
    "nir_is_valid",
    "nir_key",
    "normalise_nir",
    "validate_nir",
]

NIR_LENGTH = 15

# Explicit ASCII sets: str.isdigit() accepts full-width and Arabic-Indic digits, which int()
# would then happily parse, so a number that no registry holds could pass as well-formed.
_ASCII_DIGITS = frozenset("0123456789")
_SEX_CODES = frozenset("123478")  # 3, 4, 7, 8 are used for provisional numbers.

# Members paste numbers from letters and cards that group digits with spaces (often
# non-breaking ones), dots or dashes; all are layout, never part of the number.
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")

# The standard rule: Corsica's departments are counted as 19 (2A) and 18 (2B) in the key.
_CORSICA = {"2A": "19", "2B": "18"}

_FORMAT_MESSAGE = _("A social-security number has 15 characters: 13 digits and a 2-digit key.")
_KEY_MESSAGE = _(
    "The last 2 digits of a social-security number are a key computed from the first 13, "
    "and here they do not match: one digit was probably mistyped. Please check the number "
    "on your social-security card or certificate."
)


def normalise_nir(raw: str) -> str:
    """Return the NIR without spaces, dots or dashes, in upper case."""
    return _SEPARATORS.sub("", raw).upper()


def _is_ascii_digits(text: str) -> bool:
    """Tell whether text is non-empty and made only of ASCII digits."""
    return bool(text) and all(char in _ASCII_DIGITS for char in text)


def _month_is_valid(month: str) -> bool:
    """Tell whether the month code is 01-12, or 20-42 / 50-99 (used when the month is unknown)."""
    if not _is_ascii_digits(month) or len(month) != 2:
        return False
    value = int(month)
    return 1 <= value <= 12 or 20 <= value <= 42 or 50 <= value <= 99


def _body_is_well_formed(body: str) -> bool:
    """Tell whether a 13-character body has the structure of a NIR (sex, year, month, place)."""
    if len(body) != NIR_LENGTH - 2:
        return False
    sex, year, month = body[0], body[1:3], body[3:5]
    department, commune, order = body[5:7], body[7:10], body[10:13]
    return (
        sex in _SEX_CODES
        and _is_ascii_digits(year)
        and _month_is_valid(month)
        and (department in _CORSICA or _is_ascii_digits(department))
        and _is_ascii_digits(commune)
        and _is_ascii_digits(order)
    )


def nir_key(body13: str) -> int:
    """Return the key 97 - (n mod 97) of a 13-character NIR body, Corsica's 2A/2B included."""
    department = body13[5:7]
    digits = body13[:5] + _CORSICA.get(department, department) + body13[7:]
    # Refuse anything int() would read but a NIR cannot hold (non-ASCII digits, "+1", "1_0", " 1").
    if len(digits) != NIR_LENGTH - 2 or not _is_ascii_digits(digits):
        raise ValueError("a NIR body is 13 ASCII digits, with 2A or 2B allowed as department")
    return 97 - int(digits) % 97


def _error_code(nir: object) -> str | None:
    """Return "nir_format" or "nir_key" for an invalid NIR, None for a valid one."""
    if not isinstance(nir, str):
        return "nir_format"
    normalised = normalise_nir(nir)
    if len(normalised) != NIR_LENGTH:
        return "nir_format"
    body, key = normalised[:13], normalised[13:]
    if not _body_is_well_formed(body) or not _is_ascii_digits(key):
        return "nir_format"
    # A key outside 01..97 can never be right: it is reported as a mistyped key, like any other.
    if int(key) != nir_key(body):
        return "nir_key"
    return None


def nir_is_valid(nir: str) -> bool:
    """Tell whether nir, once normalised, is a well-formed NIR whose key matches."""
    return _error_code(nir) is None


def validate_nir(value: str) -> None:
    """Django validator: raise ValidationError (code nir_format or nir_key) for a bad NIR."""
    code = _error_code(value)
    if code == "nir_format":
        raise ValidationError(_FORMAT_MESSAGE, code="nir_format")
    if code == "nir_key":
        raise ValidationError(_KEY_MESSAGE, code="nir_key")
