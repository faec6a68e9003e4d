"""Masking filters for desk lists, where no reveal applies (members.masking)."""

from __future__ import annotations

import datetime as dt

from django import template

from members import masking

register = template.Library()


@register.filter
def mask_birth_date(value: dt.date | None) -> str:
    return masking.mask_birth_date(value)


@register.filter
def mask_nir(value: str) -> str:
    return masking.mask_nir(value)
