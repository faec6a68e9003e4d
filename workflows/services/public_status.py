"""A request's public status by reference: kind, a neutral state and dates (pages and API)."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from tickets.models import REFERENCE_REGEX, Ticket, TicketState
from workflows.models import RequestAlias

_FIELDS = ("reference", "kind", "state", "created_at", "decided_at")


@dataclass(frozen=True)
class PublicStatus:
    """What anyone holding the reference may see; never the registry's verdict."""

    reference: str
    ticket: Ticket
    received_at: datetime.datetime

    @property
    def neutral_state(self) -> str:
        """`in_review` for both open states (a mismatch is never told), `processed`, `closed`."""
        if self.ticket.state == TicketState.CONFIRMED:
            return "processed"
        if self.ticket.state == TicketState.REJECTED:
            return "closed"
        return "in_review"


def public_status_of(reference: str) -> PublicStatus | None:
    """The ticket behind a reference (its own, or a repeat request's alias); None if unknown."""
    if not re.fullmatch(REFERENCE_REGEX, reference):
        return None
    ticket = Ticket.objects.only(*_FIELDS).filter(reference=reference).first()
    if ticket is not None:
        return PublicStatus(reference=reference, ticket=ticket, received_at=ticket.created_at)
    # A repeat request's own reference: its own date, the open ticket's state.
    alias = (
        RequestAlias.objects.select_related("ticket")
        .only("created_at", *(f"ticket__{f}" for f in _FIELDS))
        .filter(reference=reference)
        .first()
    )
    if alias is None:
        return None
    return PublicStatus(reference=reference, ticket=alias.ticket, received_at=alias.created_at)
