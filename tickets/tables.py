"""Queue tables: columns only."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from tickets.models import Ticket


class TicketTable(tables.Table):
    reference = tables.LinkColumn(
        "desk_ticket", args=[tables.A("reference")], verbose_name=_("Reference")
    )
    created_at = tables.DateTimeColumn(verbose_name=_("Received"), format="d/m/Y H:i")
    assignee = tables.Column(accessor="assignee__username", verbose_name=_("Assignee"), default="—")

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
            "assignee",
            "created_at",
        )
        orderable = False
        attrs = {"class": "queue"}
