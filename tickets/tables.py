"""Queue tables: columns only (the rows come from a keyset page, already ordered)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.html import conditional_escape, format_html
from django.utils.translation import gettext_lazy as _

from tickets.filters import is_overdue
from tickets.models import Channel, MatchResult, RiskLevel, Ticket, TicketKind, TicketState


class TicketTable(tables.Table):
    """A queue; only columns led by an index (received, decided) are orderable."""

    reference = tables.Column(verbose_name=_("Reference"), orderable=False)
    kind = tables.Column(verbose_name=_("Kind"), orderable=False)
    state = tables.Column(verbose_name=_("State"), orderable=False)
    channel = tables.Column(verbose_name=_("Channel"), orderable=False)
    submitted_last_name = tables.Column(verbose_name=_("Last name"), orderable=False)
    submitted_first_name = tables.Column(verbose_name=_("First name"), orderable=False)
    match_result = tables.Column(verbose_name=_("Registry check"), orderable=False)
    risk_level = tables.Column(verbose_name=_("Risk"), orderable=False)
    assignee = tables.Column(
        accessor="assignee__username", verbose_name=_("Assignee"), default="—", orderable=False
    )
    created_at = tables.Column(verbose_name=_("Received"))
    decided_at = tables.Column(verbose_name=_("Decided"))
    late = tables.Column(empty_values=(), verbose_name=_("Target"), orderable=False)

    class Meta:
        model = Ticket
        fields = (
            "reference",
            "kind",
            "state",
            "channel",
            "submitted_last_name",
            "submitted_first_name",
            "match_result",
            "risk_level",
            "assignee",
            "created_at",
            "decided_at",
            "late",
        )
        order_by_field = "sort"
        template_name = "desk/_queue_table.html"
        attrs = {"class": "queue"}
        row_attrs = {"class": lambda record: f"state-row-{record.state}"}
        empty_text = _("No ticket here.")

    def __init__(self, *args: Any, cutoffs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.cutoffs = cutoffs or {}
        # reverse() once per table rather than once per row.
        self.ticket_url = reverse("desk_ticket", args=["REFERENCE"]).replace("REFERENCE", "{}")
        super().__init__(*args, **kwargs)

    def rendered_rows(self) -> list[tuple[str, list[str]]]:
        """(row class, cells) per record, in the visible columns' order.

        django-tables2's own row rendering inspects each render method's signature and builds
        each choice label's lookup table once per cell; on a 50-row queue that costs several
        times the keyset query. The columns, their order, headers and sorting still come from
        this table; only the cell loop is done here, with one lookup table per page.
        """
        labels = {
            name: {value: str(label) for value, label in choices}
            for name, choices in (
                ("kind", TicketKind.choices),
                ("state", TicketState.choices),
                ("channel", Channel.choices),
                ("match_result", MatchResult.choices),
                ("risk_level", RiskLevel.choices),
            )
        }
        late = str(_("late"))
        cell: dict[str, Callable[[Ticket], str]] = {
            "reference": lambda t: format_html(
                '<a href="{}">{}</a>', self.ticket_url.format(t.reference), t.reference
            ),
            "kind": lambda t: labels["kind"].get(t.kind, t.kind),
            "state": lambda t: labels["state"].get(t.state, t.state),
            "channel": lambda t: labels["channel"].get(t.channel, t.channel),
            "submitted_last_name": lambda t: t.submitted_last_name,
            "submitted_first_name": lambda t: t.submitted_first_name,
            "match_result": lambda t: labels["match_result"].get(t.match_result, "—"),
            "risk_level": lambda t: (
                labels["risk_level"].get(t.risk_level, t.risk_level)
                if t.risk_level != RiskLevel.NONE
                else ""
            ),
            "assignee": lambda t: t.assignee.username if t.assignee is not None else "—",
            "created_at": lambda t: _when(t.created_at),
            "decided_at": lambda t: _when(t.decided_at),
            "late": lambda t: late if is_overdue(t, self.cutoffs) else "",
        }
        columns = [cell[column.name] for column in self.columns]
        return [
            (f"state-row-{ticket.state}", [conditional_escape(f(ticket)) for f in columns])
            for ticket in self.data
        ]


def _when(value: datetime.datetime | None) -> str:
    return dateformat.format(timezone.localtime(value), "d/m/Y H:i") if value else ""
