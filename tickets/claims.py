"""The claim policy: who may act on a ticket that someone holds, in one place.

A claimed ticket belongs to its holder until released; staff with `tickets.take_over_ticket`
(supervisors) may take it over. Services enforce this (`claim_refusal`), and the desk shows the
same answer (`ClaimState`), so a button is never offered that the service would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from members.models import Account
from tickets.models import Ticket

CLAIM_PERMISSION = "tickets.claim_ticket"
TAKE_OVER_PERMISSION = "tickets.take_over_ticket"


def held_by_other(ticket: Ticket, user: Account) -> bool:
    """Whether somebody other than `user` holds the ticket."""
    return ticket.assignee_id not in (None, user.pk)


def claim_blocks(ticket: Ticket, user: Account) -> bool:
    """Whether another holder's claim stops `user` from acting on the ticket."""
    return held_by_other(ticket, user) and not user.has_perm(TAKE_OVER_PERMISSION)


@dataclass(frozen=True)
class ClaimState:
    """What the claim allows one user on one ticket (the desk's buttons and notices)."""

    mine: bool
    held_by_other: bool
    blocked: bool
    can_claim: bool
    take_over: bool
    can_release: bool

    @classmethod
    def of(cls, ticket: Ticket, user: Account) -> ClaimState:
        may_claim = user.has_perm(CLAIM_PERMISSION)
        other = held_by_other(ticket, user)
        blocked = claim_blocks(ticket, user)
        return cls(
            mine=ticket.assignee_id == user.pk,
            held_by_other=other,
            blocked=blocked,
            can_claim=ticket.is_open
            and may_claim
            and ticket.assignee_id != user.pk
            and not blocked,
            take_over=other and not blocked,
            can_release=ticket.is_open
            and may_claim
            and ticket.assignee_id is not None
            and not blocked,
        )
