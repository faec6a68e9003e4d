"""Reads for the desk: querysets with what their pages need, nothing more."""

from __future__ import annotations

from django.db.models import QuerySet

from tickets.models import Ticket, TicketEvent


def queue_tickets() -> QuerySet[Ticket]:
    """Tickets for a queue table, oldest first (a triage queue)."""
    return (
        Ticket.objects.select_related("assignee")
        .only(
            "reference",
            "kind",
            "channel",
            "state",
            "created_at",
            "submitted_last_name",
            "submitted_first_name",
            "submitted_member_number",
            "match_result",
            "assignee__username",
        )
        .order_by("created_at", "id")
    )


def ticket_for_desk(*, reference: str) -> Ticket:
    return Ticket.objects.select_related("member", "assignee", "decided_by").get(
        reference=reference
    )


def ticket_history(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return (
        TicketEvent.objects.filter(ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "id")
    )
