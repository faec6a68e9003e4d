"""Masking of the most sensitive identity fields on desk pages (docs/product.md, "Masking").

Only the last characters stay visible until the agent reveals the value with a reason:
the NIR keeps its last 3 digits, a birth date its year.
"""

from __future__ import annotations

import datetime as dt

MASK = "•"
NIR_VISIBLE = 3


def mask_nir(nir: str) -> str:
    if not nir:
        return ""
    visible = nir[-NIR_VISIBLE:]
    return MASK * (len(nir) - len(visible)) + visible


def mask_birth_date(value: dt.date | None) -> str:
    if value is None:
        return ""
    return f"{MASK * 2}/{MASK * 2}/{value.year:04d}"


def mask_email(email: str) -> str:
    """An address shown to its member but not read over a shoulder: `j•••t@example.org`.

    The first and last characters of the local part stay, and the domain (enough to recognise
    one's own address, or to see it is not one's own)."""
    local, at, domain = email.rpartition("@")
    if not at:
        local, domain = email, ""
    shown = local[:1] + MASK * 3 + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}" if at else shown
