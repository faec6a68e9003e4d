"""Formatting for the supervisors' figures."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as `42 s`, `4 min 12 s` or `3 h 05 min`; a dash when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return _("%(s)d s") % {"s": total}
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}


@register.filter
def percent(share: float | None) -> str:
    """A share in [0, 1] as a whole percentage; a dash when unknown."""
    if share is None:
        return "—"
    return f"{round(share * 100)} %"
