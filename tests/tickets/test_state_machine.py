"""The ticket's state machine: every (state, transition) pair, guards and permissions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed, has_transition_perm

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tickets.models import RejectionReason, Ticket, TicketState
from tickets.services import TicketActionError, ticket_transition

S = TicketState
ALL_STATES = list(S)


def _no_args(ticket: Ticket) -> tuple[object, ...]:
    return ()


def _maker_args(ticket: Ticket) -> tuple[object, ...]:
    return (StaffFactory(), ["identity_mismatch"])


def _approver_args(ticket: Ticket) -> tuple[object, ...]:
    return (StaffFactory(groups=["supervisors", "agents"]),)


def _reason_args(ticket: Ticket) -> tuple[object, ...]:
    return (RejectionReason.IDENTITY_NOT_CONFIRMED,)


# transition name -> (arguments, {source state: target state}); any other source is refused.
# The tickets are plain web registrations (not risky) except in identity_mismatch, which is
# risky by itself (four-eyes): there `confirm` is refused and `request_approval` is the way.
TRANSITIONS: dict[str, tuple[Callable[[Ticket], tuple[object, ...]], dict[str, str]]] = {
    "flag_mismatch": (_no_args, {S.PENDING: S.IDENTITY_MISMATCH}),
    "flag_mismatch_at_intake": (_no_args, {S.PENDING: S.IDENTITY_MISMATCH}),
    # The clean-match path at intake records a transition too (equal work on every path).
    "pass_registry_check": (_no_args, {S.PENDING: S.PENDING}),
    "confirm": (_no_args, {S.PENDING: S.CONFIRMED}),
    "request_approval": (_maker_args, {S.IDENTITY_MISMATCH: S.AWAITING_APPROVAL}),
    "approve": (_approver_args, {S.AWAITING_APPROVAL: S.CONFIRMED}),
    # Back to the state it was confirmed from (identity_mismatch in _ticket_in).
    "send_back": (_approver_args, {S.AWAITING_APPROVAL: S.IDENTITY_MISMATCH}),
    # A registry import changed the member and the request no longer matches (system only).
    "flag_mismatch_after_registry_change": (_no_args, {S.PENDING: S.IDENTITY_MISMATCH}),
    "withdraw_approval_after_registry_change": (
        _no_args,
        {S.AWAITING_APPROVAL: S.IDENTITY_MISMATCH},
    ),
    "reject": (_reason_args, {S.PENDING: S.REJECTED, S.IDENTITY_MISMATCH: S.REJECTED}),
    "expire": (
        _no_args,
        {S.PENDING: S.REJECTED, S.IDENTITY_MISMATCH: S.REJECTED, S.AWAITING_APPROVAL: S.REJECTED},
    ),
    "cancel_for_frozen_account": (
        _no_args,
        {S.PENDING: S.REJECTED, S.IDENTITY_MISMATCH: S.REJECTED, S.AWAITING_APPROVAL: S.REJECTED},
    ),
}

PAIRS = [(state, name) for state in ALL_STATES for name in TRANSITIONS]


def _ticket_in(state: str, **kwargs: object) -> Ticket:
    """A saved ticket created directly in `state` (the only time the field may be set)."""
    if state == S.AWAITING_APPROVAL:
        kwargs.setdefault("approval_requested_by", StaffFactory())
        kwargs.setdefault("approval_from_state", S.IDENTITY_MISMATCH)
        kwargs.setdefault("approval_reasons", ["identity_mismatch"])
    return TicketFactory(state=state, **kwargs)


def test_the_table_covers_every_transition_of_the_model() -> None:
    declared = {t.name for t in Ticket._meta.get_field("state").get_all_transitions(Ticket)}
    assert declared == set(TRANSITIONS)


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "name"), PAIRS, ids=[f"{s}-{n}" for s, n in PAIRS])
def test_every_state_transition_pair(state: str, name: str) -> None:
    """Allowed pairs reach their target and persist; the others raise and change nothing."""
    make_args, targets = TRANSITIONS[name]
    ticket = _ticket_in(state)
    args = make_args(ticket)
    method = getattr(ticket, name)
    if state in targets:
        assert can_proceed(method)
        method(*args)
        ticket.save()
        assert ticket.state == targets[state]
        assert Ticket.objects.get(pk=ticket.pk).state == targets[state]
    else:
        assert not can_proceed(method)
        with pytest.raises(TransitionNotAllowed):
            method(*args)
        assert ticket.state == state
        assert Ticket.objects.get(pk=ticket.pk).state == state


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "name"), PAIRS, ids=[f"{s}-{n}" for s, n in PAIRS])
def test_the_service_refuses_the_same_pairs(state: str, name: str) -> None:
    """ticket_transition (the one sanctioned path) agrees with the model and records nothing."""
    make_args, targets = TRANSITIONS[name]
    ticket = _ticket_in(state)
    args = make_args(ticket)
    if state in targets:
        event = ticket_transition(ticket=ticket, transition_name=name, actor=None, args=args)
        assert (event.from_state, event.to_state) == (state, targets[state])
    else:
        with pytest.raises(TicketActionError) as refused:
            ticket_transition(ticket=ticket, transition_name=name, actor=None, args=args)
        assert refused.value.code == "not_allowed_in_state"
        assert not ticket.events.exists()


@pytest.mark.django_db
def test_decisions_set_their_bookkeeping_fields() -> None:
    confirmed = _ticket_in(S.PENDING, rejection_reason="")
    confirmed.confirm()
    assert confirmed.decided_at is not None and confirmed.rejection_reason == ""
    rejected = _ticket_in(S.PENDING)
    rejected.reject(RejectionReason.NOT_ELIGIBLE)
    assert rejected.decided_at is not None
    assert rejected.rejection_reason == RejectionReason.NOT_ELIGIBLE
    expired = _ticket_in(S.PENDING)
    expired.expire()
    assert expired.rejection_reason == RejectionReason.EXPIRED


@pytest.mark.django_db
def test_state_cannot_be_written_directly() -> None:
    ticket = _ticket_in(S.PENDING)
    with pytest.raises(AttributeError):
        ticket.state = S.CONFIRMED
    loaded = Ticket.objects.get(pk=ticket.pk)
    with pytest.raises(AttributeError):
        loaded.state = S.REJECTED
    assert Ticket.objects.get(pk=ticket.pk).state == S.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("state", [S.PENDING, S.IDENTITY_MISMATCH])
def test_confirm_needs_a_registry_member(state: str) -> None:
    ticket = _ticket_in(state, member=None)
    assert not ticket.has_registry_member()
    assert not can_proceed(ticket.confirm)
    with pytest.raises(TransitionNotAllowed):
        ticket.confirm()
    assert ticket.state == state
    # Rejecting needs no member: an unknown person's request can still be closed.
    ticket.reject(RejectionReason.NOT_IN_REGISTRY)
    assert ticket.state == S.REJECTED


@pytest.mark.django_db
def test_agents_and_supervisors_may_decide(agent: Account, supervisor: Account) -> None:
    ticket = _ticket_in(S.PENDING)
    for user in (agent, supervisor):
        for name in ("confirm", "reject", "flag_mismatch"):
            assert has_transition_perm(getattr(ticket, name), user), (user, name)


@pytest.mark.django_db
def test_members_and_staff_outside_the_groups_may_not_decide(member_account: Account) -> None:
    ticket = _ticket_in(S.PENDING)
    staff_without_group = StaffFactory(groups=[])
    for user in (member_account, staff_without_group):
        for name in ("confirm", "reject", "flag_mismatch"):
            assert not has_transition_perm(getattr(ticket, name), user), (user, name)
        offered = {t.name for t in ticket.get_available_user_state_transitions(user)}
        assert not offered & {"confirm", "reject", "flag_mismatch"}


@pytest.mark.django_db
def test_the_service_refuses_a_transition_the_actor_may_not_make(member_account: Account) -> None:
    ticket = _ticket_in(S.PENDING)
    for user in (member_account, StaffFactory(groups=[])):
        with pytest.raises(TicketActionError) as refused:
            ticket_transition(ticket=ticket, transition_name="confirm", actor=user)
        assert refused.value.code == "forbidden"
    assert Ticket.objects.get(pk=ticket.pk).state == S.PENDING
    assert not ticket.events.exists()


@pytest.mark.django_db
def test_the_transitions_offered_follow_state_and_permission(agent: Account) -> None:
    pending = _ticket_in(S.PENDING)
    mismatch = _ticket_in(S.IDENTITY_MISMATCH)
    decided = _ticket_in(S.CONFIRMED)

    def offered(ticket: Ticket) -> set[str]:
        return {t.name for t in ticket.get_available_user_state_transitions(agent)}

    assert {"confirm", "reject", "flag_mismatch"} <= offered(pending)
    assert "request_approval" not in offered(pending)
    # A mismatch is confirmed only through a second person (four-eyes).
    assert {"request_approval", "reject"} <= offered(mismatch)
    assert not {"confirm", "flag_mismatch"} & offered(mismatch)
    assert offered(decided) == set()


@pytest.mark.django_db
def test_a_stale_copy_cannot_overwrite_a_newer_state() -> None:
    """ConcurrentTransitionMixin: saving a transition made on an outdated copy fails."""
    ticket = _ticket_in(S.PENDING)
    stale = Ticket.objects.get(pk=ticket.pk)
    ticket.reject(RejectionReason.DUPLICATE)
    ticket.save()
    stale.confirm()
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()
    assert Ticket.objects.get(pk=ticket.pk).state == S.REJECTED


@pytest.mark.parametrize(
    "name",
    [
        "flag_mismatch_at_intake",
        "pass_registry_check",
        "expire",
        "cancel_for_frozen_account",
        "flag_mismatch_after_registry_change",
        "withdraw_approval_after_registry_change",
    ],
)
def test_no_person_may_run_a_system_transition(agent: Account, name: str) -> None:
    source = S.AWAITING_APPROVAL if name.startswith("withdraw_approval") else S.PENDING
    ticket = _ticket_in(source)
    supervisor = StaffFactory(groups=["supervisors", "agents"])
    for person in (agent, supervisor):
        assert not has_transition_perm(getattr(ticket, name), person)
        with pytest.raises(TicketActionError) as refused:
            ticket_transition(ticket=ticket, transition_name=name, actor=person)
        assert refused.value.code == "forbidden"
    assert Ticket.objects.get(pk=ticket.pk).state == source
