"""Every write to tickets and their history goes through these functions."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed, has_transition_perm

from core.logging import current_request_id
from members.models import Account
from tickets.claims import CLAIM_PERMISSION, TAKE_OVER_PERMISSION, claim_blocks
from tickets.four_eyes import is_maker
from tickets.models import (
    DECIDABLE_STATES,
    ActorKind,
    EventKind,
    Ticket,
    TicketEvent,
    TicketState,
)


class TicketActionError(Exception):
    """A ticket action that cannot be done now; `code` names why, for the person and the log."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


def _actor_kind(actor: Account | None) -> str:
    if actor is None:
        return ActorKind.SYSTEM
    return ActorKind.STAFF if actor.is_staff else ActorKind.MEMBER


def _username(account: Account | None) -> str:
    """The account's username, "" for none (an unset foreign key is read without a query)."""
    return account.username if account is not None else ""


def event_record(
    *,
    ticket: Ticket,
    kind: str,
    actor: Account | None = None,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    body: str = "",
    data: dict[str, Any] | None = None,
    request_id: str = "",
) -> TicketEvent:
    """Append one history row to the ticket's hash chain; call with the ticket row locked.

    With no explicit `request_id`, the row carries the current request's (or task's) id, the
    one in the X-Request-ID response header and the JSON logs (core.logging.current_request_id).
    """
    previous = (
        TicketEvent.objects.filter(ticket=ticket)
        .order_by("-created_at", "-id")
        .values_list("row_hash", flat=True)[:1]
    )
    event = TicketEvent(
        ticket=ticket,
        kind=kind,
        actor=actor,
        actor_kind=_actor_kind(actor),
        from_state=from_state,
        to_state=to_state,
        reason=reason[:64],
        body=body,
        data=data or {},
        request_id=(request_id or current_request_id())[:128],
        created_at=timezone.now(),
        previous_hash=next(iter(previous), ""),
    )
    event.row_hash = event.compute_hash()
    event.save()
    return event


def ticket_lock(*, reference: str) -> Ticket:
    """Load a ticket with its row locked for the rest of the transaction."""
    ticket: Ticket = Ticket.objects.select_for_update().get(reference=reference)
    return ticket


def ticket_transition(
    *,
    ticket: Ticket,
    transition_name: str,
    actor: Account | None,
    reason: str = "",
    body: str = "",
    request_id: str = "",
    data: dict[str, Any] | None = None,
    args: tuple[Any, ...] = (),
) -> TicketEvent:
    """Run one FSM transition on a locked ticket, save it and record it; raise if not allowed."""
    method = getattr(ticket, transition_name)
    from_state = ticket.state
    if not can_proceed(method):
        raise TicketActionError("not_allowed_in_state")
    if actor is not None and not has_transition_perm(method, actor):
        raise TicketActionError("forbidden")
    method(*args)
    ticket.save()
    return event_record(
        ticket=ticket,
        kind=EventKind.TRANSITION,
        actor=actor,
        from_state=from_state,
        to_state=ticket.state,
        reason=reason,
        body=body,
        request_id=request_id,
        data=data,
    )


def _check_claim_allows(ticket: Ticket, actor: Account) -> None:
    """A ticket claimed by someone else is theirs until released or taken over (tickets.claims)."""
    if claim_blocks(ticket, actor):
        raise TicketActionError("claimed_by_other")


def _assign(
    *, ticket: Ticket, assignee: Account | None, actor: Account, request_id: str, **event: Any
) -> None:
    """Give the (locked) ticket to `assignee`, or back to the queue, and record who did it."""
    ticket.assignee = assignee
    ticket.claimed_at = timezone.now() if assignee is not None else None
    ticket.save(update_fields=["assignee", "claimed_at"])
    event_record(ticket=ticket, actor=actor, request_id=request_id, **event)


@transaction.atomic
def ticket_claim(*, reference: str, actor: Account, request_id: str = "") -> Ticket:
    """Assign an open ticket to the acting agent (supervisors may take over another's claim)."""
    ticket = ticket_lock(reference=reference)
    if not ticket.is_open:
        raise TicketActionError("already_decided")
    if not actor.has_perm(CLAIM_PERMISSION):
        raise TicketActionError("forbidden")
    if ticket.assignee_id == actor.pk:
        return ticket
    _check_claim_allows(ticket, actor)
    previous = _username(ticket.assignee)
    _assign(
        ticket=ticket,
        assignee=actor,
        actor=actor,
        request_id=request_id,
        kind=EventKind.CLAIM,
        reason="take_over" if previous else "",
        data={"previous_assignee": previous} if previous else {},
    )
    return ticket


@transaction.atomic
def ticket_release(*, reference: str, actor: Account, request_id: str = "") -> Ticket:
    """Give a claimed ticket back to the queue."""
    ticket = ticket_lock(reference=reference)
    if ticket.assignee_id is None:
        return ticket
    if not actor.has_perm(CLAIM_PERMISSION):
        raise TicketActionError("forbidden")
    _check_claim_allows(ticket, actor)
    _assign(
        ticket=ticket,
        assignee=None,
        actor=actor,
        request_id=request_id,
        kind=EventKind.RELEASE,
        data={"previous_assignee": _username(ticket.assignee)},
    )
    return ticket


@transaction.atomic
def ticket_reassign(
    *, reference: str, actor: Account, assignee: Account, request_id: str = ""
) -> Ticket:
    """A supervisor hands an open ticket to an agent, whoever held it; recorded as a claim."""
    ticket = ticket_lock(reference=reference)
    if not ticket.is_open:
        raise TicketActionError("already_decided")
    if not actor.has_perm(TAKE_OVER_PERMISSION):
        raise TicketActionError("forbidden")
    if not (assignee.is_active and assignee.is_staff and assignee.has_perm(CLAIM_PERMISSION)):
        raise TicketActionError("invalid_assignee")
    if ticket.assignee_id == assignee.pk:
        return ticket
    previous = _username(ticket.assignee)
    _assign(
        ticket=ticket,
        assignee=assignee,
        actor=actor,
        request_id=request_id,
        kind=EventKind.CLAIM,
        reason="reassign",
        data={"previous_assignee": previous, "assignee": assignee.username},
    )
    return ticket


@transaction.atomic
def ticket_note(*, reference: str, actor: Account, body: str, request_id: str = "") -> TicketEvent:
    """Add an internal note to a ticket's history."""
    ticket = ticket_lock(reference=reference)
    return event_record(
        ticket=ticket, kind=EventKind.NOTE, actor=actor, body=body, request_id=request_id
    )


def ticket_check_decidable(*, ticket: Ticket, actor: Account) -> None:
    """Raise unless `actor` may decide this (locked) ticket now."""
    if ticket.state == TicketState.AWAITING_APPROVAL:
        raise TicketActionError("awaiting_approval")
    if ticket.state not in DECIDABLE_STATES:
        raise TicketActionError("already_decided")
    _check_claim_allows(ticket, actor)


def ticket_check_approvable(*, ticket: Ticket, actor: Account) -> None:
    """Raise unless `actor` may approve or send back this (locked) ticket now (four-eyes)."""
    if ticket.state != TicketState.AWAITING_APPROVAL:
        raise TicketActionError(
            "already_decided" if not ticket.is_open else "not_awaiting_approval"
        )
    if is_maker(ticket, actor):
        raise TicketActionError("own_confirmation")
    _check_claim_allows(ticket, actor)


@transaction.atomic
def ticket_record_refusal(
    *, reference: str, actor: Account, action: str, code: str, request_id: str = ""
) -> TicketEvent | None:
    """Keep a refused desk action in the history (the loser of a race, a forbidden attempt)."""
    ticket = Ticket.objects.select_for_update().filter(reference=reference).first()
    if ticket is None:
        return None
    return event_record(
        ticket=ticket,
        kind=EventKind.REFUSED,
        actor=actor,
        from_state=ticket.state,
        reason=code,
        data={"action": action},
        request_id=request_id,
    )
