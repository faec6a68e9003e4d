"""Form fields and cleaning for a person's identity, shared by every face that takes one.

The members' request forms and the desk's on-behalf form accept the same identity the same way:
names kept as typed (Zoë, Nguyễn, O'Brien) but never markup or controls, NIR with its key,
birth dates in two formats, nothing impossible.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from members.nir import normalise_nir, validate_nir

MEMBER_NUMBER_RE = re.compile(r"^[A-Za-z0-9]{4,20}$")
NAME_MAX = 150
# Letters of any script, combining marks, spaces, hyphens, apostrophes and dots.
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f<>\"\\;{}\[\]=@#$%^*+|~/0-9]")


class BirthDateField(forms.DateField):
    """Accepts YYYY-MM-DD or DD/MM/YYYY; refuses impossible and future dates clearly."""

    input_formats = ["%Y-%m-%d", "%d/%m/%Y"]
    default_error_messages = {
        "invalid": _("Enter a real date, as DD/MM/YYYY (for example 31/01/1950)."),
    }

    def validate(self, value: datetime.date | None) -> None:
        super().validate(value)
        if value is None:
            return
        today = datetime.date.today()  # noqa: DTZ011  (a birth date is a calendar date)
        if value > today:
            raise ValidationError(_("A birth date cannot be in the future."), code="future")
        if value.year < 1900:
            raise ValidationError(_("Enter a birth date after 1900."), code="too_old")


def clean_person_name(value: str) -> str:
    """Keep the name as typed (Zoë, Nguyễn, O'Brien stay intact) but refuse markup and controls."""
    value = " ".join(value.split())
    if not value:
        raise ValidationError(_("This field is required."), code="required")
    if _NAME_FORBIDDEN.search(value):
        raise ValidationError(
            _("Use only letters, spaces, hyphens and apostrophes."), code="invalid_name"
        )
    return value


class IdentityCleaningMixin:
    """Cleaning of the identity fields, shared by the public forms and the desk's on-behalf form."""

    cleaned_data: dict[str, Any]

    def clean_member_number(self) -> str:
        value: str = self.cleaned_data["member_number"].strip().upper()
        if value and not MEMBER_NUMBER_RE.fullmatch(value):
            raise ValidationError(
                _("A member ID has 4 to 20 letters and digits, as printed on your card."),
                code="invalid_member_number",
            )
        return value

    def clean_nir(self) -> str:
        raw = self.cleaned_data["nir"]
        if not raw.strip():
            return ""
        value = normalise_nir(raw)
        validate_nir(value)
        return value

    def clean_last_name(self) -> str:
        return clean_person_name(self.cleaned_data["last_name"])

    def clean_first_name(self) -> str:
        return clean_person_name(self.cleaned_data["first_name"])
