"""Ticket history: one row per action, append-only, hash-chained."""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from members.models import Account
from tests.factories import TicketFactory
from tickets.models import (
    ActorKind,
    AppendOnlyError,
    EventKind,
    RejectionReason,
    Ticket,
    TicketEvent,
    TicketState,
)
from tickets.services import TicketActionError, ticket_claim, ticket_note, ticket_release
from workflows.services.decisions import (
    ticket_confirm,
    ticket_flag_mismatch,
    ticket_reject,
    tickets_expire_stale,
)

pytestmark = pytest.mark.django_db


def _new_events(ticket: Ticket, before: int) -> list[TicketEvent]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("created_at", "id")[before:])


def test_a_claim_writes_one_row_and_a_repeat_writes_none(agent: Account) -> None:
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent, request_id="req-1")
    [event] = _new_events(ticket, 0)
    assert event.kind == EventKind.CLAIM
    assert (event.actor, event.actor_kind) == (agent, ActorKind.STAFF)
    assert event.request_id == "req-1"
    ticket_claim(reference=ticket.reference, actor=agent)
    assert ticket.events.count() == 1


def test_a_take_over_names_the_previous_assignee(agent: Account, supervisor: Account) -> None:
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent)
    ticket_claim(reference=ticket.reference, actor=supervisor)
    [event] = _new_events(ticket, 1)
    assert (event.kind, event.actor, event.reason) == (EventKind.CLAIM, supervisor, "take_over")
    assert event.data == {"previous_assignee": agent.username}


def test_a_release_writes_one_row(agent: Account) -> None:
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent)
    ticket_release(reference=ticket.reference, actor=agent)
    [event] = _new_events(ticket, 1)
    assert (event.kind, event.actor) == (EventKind.RELEASE, agent)
    assert event.data == {"previous_assignee": agent.username}
    # Releasing an unclaimed ticket changes nothing and records nothing.
    ticket_release(reference=ticket.reference, actor=agent)
    assert ticket.events.count() == 2


def test_a_note_writes_one_row_with_its_body(agent: Account) -> None:
    ticket = TicketFactory()
    ticket_note(reference=ticket.reference, actor=agent, body="Called the member back.")
    [event] = _new_events(ticket, 0)
    assert (event.kind, event.actor, event.body) == (
        EventKind.NOTE,
        agent,
        "Called the member back.",
    )
    assert (event.from_state, event.to_state) == ("", "")


def test_flag_mismatch_writes_one_transition_row(agent: Account) -> None:
    ticket = TicketFactory()
    ticket_flag_mismatch(reference=ticket.reference, actor=agent, comment="Birth date odd")
    [event] = _new_events(ticket, 0)
    assert event.kind == EventKind.TRANSITION
    assert (event.from_state, event.to_state) == (
        TicketState.PENDING,
        TicketState.IDENTITY_MISMATCH,
    )
    assert (event.actor, event.actor_kind, event.body) == (agent, ActorKind.STAFF, "Birth date odd")


def test_reject_writes_one_transition_row_with_the_reason(agent: Account) -> None:
    ticket = TicketFactory(state=TicketState.IDENTITY_MISMATCH)
    ticket_reject(
        reference=ticket.reference,
        actor=agent,
        reason=RejectionReason.IDENTITY_NOT_CONFIRMED,
        comment="Name differs",
    )
    [event] = _new_events(ticket, 0)
    assert event.kind == EventKind.TRANSITION
    assert (event.from_state, event.to_state) == (
        TicketState.IDENTITY_MISMATCH,
        TicketState.REJECTED,
    )
    assert (event.actor, event.reason, event.body) == (
        agent,
        RejectionReason.IDENTITY_NOT_CONFIRMED,
        "Name differs",
    )


def test_confirm_writes_one_transition_row_then_the_outcome(agent: Account) -> None:
    ticket = TicketFactory()
    ticket_confirm(reference=ticket.reference, actor=agent, comment="Checked by phone")
    events = _new_events(ticket, 0)
    transitions = [e for e in events if e.kind == EventKind.TRANSITION]
    assert len(transitions) == 1
    [transition] = transitions
    assert (transition.from_state, transition.to_state) == (
        TicketState.PENDING,
        TicketState.CONFIRMED,
    )
    assert (transition.actor, transition.body) == (agent, "Checked by phone")
    assert [(e.kind, e.reason) for e in events] == [
        (EventKind.TRANSITION, ""),
        (EventKind.OUTCOME, "account_created"),
    ]


def test_a_refused_action_writes_no_row(agent: Account, second_agent: Account) -> None:
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=second_agent)
    with pytest.raises(TicketActionError):
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert ticket.events.count() == 1


def test_system_transitions_have_no_actor() -> None:
    ticket = TicketFactory()
    Ticket.objects.filter(pk=ticket.pk).update(created_at="2000-01-01T00:00:00Z")
    assert tickets_expire_stale() == 1
    [event] = _new_events(ticket, 0)
    assert (event.actor, event.actor_kind) == (None, ActorKind.SYSTEM)
    assert (event.to_state, event.reason) == (TicketState.REJECTED, RejectionReason.EXPIRED)


# --- append-only ------------------------------------------------------------------------------


@pytest.fixture
def event(agent: Account) -> TicketEvent:
    ticket = TicketFactory()
    return ticket_note(reference=ticket.reference, actor=agent, body="original")


def test_saving_an_existing_row_is_refused(event: TicketEvent) -> None:
    event.body = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert TicketEvent.objects.get(pk=event.pk).body == "original"


def test_deleting_a_row_is_refused(event: TicketEvent) -> None:
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert TicketEvent.objects.filter(pk=event.pk).exists()


def test_queryset_update_and_delete_are_refused(event: TicketEvent) -> None:
    with pytest.raises(AppendOnlyError):
        TicketEvent.objects.filter(pk=event.pk).update(body="rewritten")
    with pytest.raises(AppendOnlyError):
        TicketEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        event.ticket.events.update(body="rewritten")
    with pytest.raises(AppendOnlyError):
        event.ticket.events.all().delete()
    event.body = "rewritten"
    with pytest.raises(AppendOnlyError), transaction.atomic():
        TicketEvent.objects.bulk_update([event], ["body"])
    assert TicketEvent.objects.get(pk=event.pk).body == "original"


def test_a_ticket_with_history_cannot_be_deleted(event: TicketEvent) -> None:
    with pytest.raises(ProtectedError):
        event.ticket.delete()
    assert TicketEvent.objects.filter(pk=event.pk).exists()


# --- hash chain -------------------------------------------------------------------------------


def test_the_hash_chain_links_every_row(agent: Account, supervisor: Account) -> None:
    ticket = TicketFactory()
    other = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent)
    ticket_note(reference=other.reference, actor=agent, body="other ticket, other chain")
    ticket_note(reference=ticket.reference, actor=agent, body="a note")
    ticket_flag_mismatch(reference=ticket.reference, actor=agent)
    ticket_claim(reference=ticket.reference, actor=supervisor)
    ticket_reject(
        reference=ticket.reference, actor=supervisor, reason=RejectionReason.SUSPECTED_FRAUD
    )
    rows = list(TicketEvent.objects.filter(ticket=ticket).order_by("created_at", "id"))
    assert len(rows) == 5
    assert rows[0].previous_hash == ""
    for previous, row in itertools.pairwise(rows):
        assert row.previous_hash == previous.row_hash
    for row in rows:
        assert len(row.row_hash) == 64
        assert row.row_hash == row.compute_hash()
    assert len({row.row_hash for row in rows}) == len(rows)
    [other_row] = TicketEvent.objects.filter(ticket=other)
    assert other_row.previous_hash == ""


def test_a_tampered_row_no_longer_matches_its_hash(event: TicketEvent) -> None:
    """What a superuser bypassing the ORM would change is detectable."""
    loaded = TicketEvent.objects.get(pk=event.pk)
    assert loaded.row_hash == loaded.compute_hash()
    for field, value in (("body", "rewritten"), ("reason", "x"), ("actor_id", None)):
        tampered = TicketEvent.objects.get(pk=event.pk)
        setattr(tampered, field, value)
        assert tampered.compute_hash() != loaded.row_hash, field
