"""Charts drawn on the server as inline SVG: no script, no CDN, a table beside each for readers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

WIDTH = 760
HEIGHT = 260
MARGIN_LEFT = 44
MARGIN_RIGHT = 12
MARGIN_TOP = 28
MARGIN_BOTTOM = 40
SERIES = (("received", "#0b4f6c"), ("decided", "#e07a00"))


def _nice_ceiling(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def flow_chart(days: Sequence[dict[str, Any]]) -> SafeString:
    """Requests received vs decided per day, as grouped bars with a legend and a y axis."""
    labels = {"received": _("Received"), "decided": _("Decided")}
    top = _nice_ceiling(max((max(d["received"], d["decided"]) for d in days), default=0))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot / 2 - 1, 1)
    title = _("Requests received and decided per day")
    desc = _("Bar chart over %(n)s days; the table next to it lists the same numbers.") % {
        "n": len(days)
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-labelledby="flow-title flow-desc" '
        f'data-chart="flow">',
        f'<title id="flow-title">{escape(title)}</title>',
        f'<desc id="flow-desc">{escape(desc)}</desc>',
    ]
    for i in range(5):
        value = f"{top * i / 4:g}"
        y = MARGIN_TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#c9ced6" stroke-width="1"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{value}</text>"
        )
    for index, day in enumerate(days):
        x0 = MARGIN_LEFT + index * slot + 1
        for offset, (key, colour) in enumerate(SERIES):
            height = plot_h * day[key] / top
            x = x0 + offset * bar
            y = MARGIN_TOP + plot_h - height
            label = f"{_date(day['day'])}: {labels[key]} {day[key]}"
            parts.append(
                f'<rect class="bar bar-{key}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{escape(label)}</title></rect>'
            )
        if index % 5 == 0 or index == len(days) - 1:
            parts.append(
                f'<text x="{x0 + bar:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                f'text-anchor="middle" font-size="11">{escape(_short_date(day["day"]))}</text>'
            )
    legend_x = MARGIN_LEFT
    for key, colour in SERIES:
        parts.append(
            f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="18" font-size="12">{escape(labels[key])}</text>'
        )
        legend_x += 110
    parts.append("</svg>")
    # Every interpolated text went through escape(); numbers are formatted by us.
    return mark_safe("".join(parts))  # noqa: S308


def _date(day: dt.date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def _short_date(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}"
