"""Table bodies of the long tables, built in Python.

The people table holds up to agents x 7 rows; resolving each cell through the template engine
cost more than all the page's queries together, so the rows are formatted here (escaped by
`format_html_join`) and the template keeps the table's head, caption and structure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from supervision.templatetags.supervision import duration, percent


@lru_cache(maxsize=512)
def _day(day: dt.date, language: str) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def _label(day: dt.date) -> str:
    return _day(day, get_language() or "")


def flow_rows(flow: Sequence[dict[str, Any]]) -> SafeString:
    return format_html_join(
        "",
        '<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td></tr>',
        ((_label(d["day"]), d["received"], d["decided"]) for d in flow),
    )


def promise_rows(days: Sequence[dict[str, Any]]) -> SafeString:
    return format_html_join(
        "",
        '<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>',
        (
            (
                _label(d["day"]), d["confirmed"], d["delivered"], duration(d["median"]),
                duration(d["p95"]), percent(d["within_share"]),
            )
            for d in days
        ),
    )  # fmt: skip


def people_rows(rows: Sequence[dict[str, Any]]) -> SafeString:
    queue = reverse("supervision_queue")
    return format_html_join(
        "",
        '<tr><td>{}</td><th scope="row"><a href="{}?assignee={}">{}</a></th>'
        '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td></tr>',
        (
            (
                _label(r["day"]), queue, r["agent_id"], r["agent"], r["confirmed"],
                r["rejected"], percent(r["rejection_share"]),
                duration(r["median_handling_seconds"]),
            )
            for r in rows
        ),
    )  # fmt: skip


def _ticket_link(reference: str) -> SafeString:
    return format_html('<a href="{}">{}</a>', reverse("desk_ticket", args=[reference]), reference)


def troubled_rows(messages: Sequence[Any]) -> SafeString:
    """E-mails failed, retrying or stuck (never attempted), each linked to its ticket."""
    labels = {"failed": _("Failed"), "retrying": _("Retrying"), "stuck": _("Never attempted")}
    return format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                _ticket_link(m.ticket.reference) if m.ticket_id else "—",
                m.get_template_display(),
                labels["failed" if m.status == "failed" else "retrying" if m.attempts else "stuck"],
                m.attempts, Truncator(m.last_error).chars(80),
                date_format(timezone.localtime(m.created_at), "SHORT_DATETIME_FORMAT"),
            )
            for m in messages
        ),
    )  # fmt: skip
