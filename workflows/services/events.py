"""The outward form of a ticket's history row: the events feed and the webhooks carry this."""

from __future__ import annotations

from typing import Any

from tickets.models import EventKind, TicketEvent

# History rows told outside: a request received, its state changes, its e-mails' outcomes.
PUBLIC_EVENT_KINDS = (EventKind.CREATED, EventKind.TRANSITION, EventKind.EMAIL)
EVENT_TYPES = (
    "request.received",
    "request.transition",
    "email.sent",
    "email.retrying",
    "email.failed",
)
# The columns event_public reads (for `.only(...)` on a TicketEvent queryset). The ticket's
# state is read by django-fsm's ConcurrentTransitionMixin when a ticket is built: deferring it
# would cost one query per event.
EVENT_PUBLIC_FIELDS = (
    "pk",
    "kind",
    "reason",
    "from_state",
    "to_state",
    "data",
    "created_at",
    "ticket__reference",
    "ticket__kind",
    "ticket__state",
    "ticket__member__member_number",
)


def event_type(event: TicketEvent) -> str:
    if event.kind == EventKind.CREATED:
        return "request.received"
    if event.kind == EventKind.TRANSITION:
        return "request.transition"
    return f"email.{event.reason}"


def event_public(event: TicketEvent) -> dict[str, Any]:
    """Reference, member ID, states, e-mail template: never a name, an address or a message."""
    member = event.ticket.member
    return {
        "id": str(event.pk),
        "type": event_type(event),
        "occurred_at": event.created_at.isoformat(),
        "reference": event.ticket.reference,
        "member_number": member.member_number if member is not None else None,
        "request_kind": event.ticket.kind,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "email_template": str(event.data.get("template", ""))
        if event.kind == EventKind.EMAIL
        else "",
    }
