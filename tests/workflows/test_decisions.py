"""Agents' decisions: confirming creates the account and queues the codes; rejecting tells why."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail

from members.models import Account, CoverageKind, Member
from members.secret_answers import secret_answer_matches
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory, TicketFactory
from tests.requests import intake_request
from tickets.models import EventKind, RejectionReason, Ticket, TicketState
from tickets.services import TicketActionError, ticket_claim
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.decisions import (
    ticket_approve,
    ticket_confirm,
    ticket_flag_mismatch,
    ticket_reject,
)

pytestmark = pytest.mark.django_db


def _registration(member: Member, **overrides: Any) -> Ticket:
    """A registration made through intake, as the member's form makes it."""
    ticket = intake_request(member, **{"language": "en", **overrides})
    OutboxMessage.objects.all().delete()  # the acknowledgment is another test's business
    return ticket


def _refused(code: str, call: Any, **kwargs: Any) -> None:
    with pytest.raises(TicketActionError) as refused:
        call(**kwargs)
    assert refused.value.code == code


# --- confirm ---------------------------------------------------------------------------------


def test_confirm_creates_the_account_and_queues_the_codes(
    agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    member = MemberFactory(member_number="800000001")
    ticket = _registration(member)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ticket_confirm(reference=ticket.reference, actor=agent, comment="ok")
    ticket.refresh_from_db()
    assert ticket.state == TicketState.CONFIRMED
    assert (ticket.decided_by, ticket.rejection_reason) == (agent, "")
    assert ticket.decided_at is not None

    account = Account.objects.get(member=member)
    assert account.username == "800000001"
    assert account.email == "typed@example.org"
    assert (account.first_name, account.last_name) == (member.first_name, member.last_name)
    assert account.must_change_password is True
    assert account.has_usable_password() is False  # no password exists until the worker sends one
    assert account.is_staff is False and account.is_active is True
    assert account.secret_question == "first_pet"
    assert account.secret_answer_hash == ticket.secret_answer_hash
    assert secret_answer_matches("  CARAMEL ", account.secret_answer_hash)

    [row] = OutboxMessage.objects.all()
    assert (row.template, row.recipient, row.account, row.ticket, row.language) == (
        EmailTemplate.CREDENTIALS,
        "typed@example.org",
        account,
        ticket,
        "en",
    )
    assert row.status == OutboxStatus.PENDING
    # Nothing secret is queued: the worker makes the password when it sends the e-mail.
    assert "password" not in str(row.context).lower()
    assert row.context in ({}, {"reference": ticket.reference})
    # Dispatch happens after commit only.
    assert len(callbacks) == 1
    assert mail.outbox == []


def test_confirming_an_identity_mismatch_needs_a_second_person(
    agent: Account, supervisor: Account
) -> None:
    member = MemberFactory(member_number="800000002", last_name="Martin")
    ticket = _registration(member, last_name="Martn")
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    ticket_confirm(reference=ticket.reference, actor=agent)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.AWAITING_APPROVAL
    assert not Account.objects.filter(username="800000002").exists()
    ticket_approve(reference=ticket.reference, actor=supervisor)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.CONFIRMED
    assert Account.objects.filter(username="800000002").exists()


def _nothing_changed(ticket: Ticket, state: str = TicketState.PENDING) -> None:
    assert Ticket.objects.get(pk=ticket.pk).state == state
    assert not OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).exists()
    assert not ticket.events.filter(kind=EventKind.TRANSITION, to_state="confirmed").exists()


def test_confirm_refuses_a_decided_ticket(agent: Account) -> None:
    ticket = _registration(MemberFactory(member_number="800000003"))
    ticket_confirm(reference=ticket.reference, actor=agent)
    OutboxMessage.objects.all().delete()
    _refused("already_decided", ticket_confirm, reference=ticket.reference, actor=agent)
    _refused(
        "already_decided",
        ticket_reject,
        reference=ticket.reference,
        actor=agent,
        reason=RejectionReason.OTHER,
    )
    assert Account.objects.filter(username="800000003").count() == 1
    assert not OutboxMessage.objects.exists()


def test_confirm_refuses_a_ticket_claimed_by_another_agent(
    agent: Account, second_agent: Account
) -> None:
    ticket = _registration(MemberFactory(member_number="800000004"))
    ticket_claim(reference=ticket.reference, actor=second_agent)
    _refused("claimed_by_other", ticket_confirm, reference=ticket.reference, actor=agent)
    _nothing_changed(ticket)
    assert not Account.objects.filter(username="800000004").exists()


def test_a_supervisor_may_decide_a_ticket_claimed_by_someone_else(
    agent: Account, supervisor: Account
) -> None:
    ticket = _registration(MemberFactory(member_number="800000005"))
    ticket_claim(reference=ticket.reference, actor=agent)
    ticket_confirm(reference=ticket.reference, actor=supervisor)
    assert Ticket.objects.get(pk=ticket.pk).decided_by == supervisor


def test_the_claiming_agent_may_decide(agent: Account) -> None:
    ticket = _registration(MemberFactory(member_number="800000006"))
    ticket_claim(reference=ticket.reference, actor=agent)
    ticket_confirm(reference=ticket.reference, actor=agent)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.CONFIRMED


def test_confirm_refuses_a_beneficiary(agent: Account) -> None:
    member = MemberFactory(member_number="800000007", coverages=[CoverageKind.HEALTH_BENEFICIARY])
    ticket = _registration(member)
    _refused("not_eligible", ticket_confirm, reference=ticket.reference, actor=agent)
    _nothing_changed(ticket, TicketState.IDENTITY_MISMATCH)
    assert not Account.objects.filter(member=member).exists()


def test_confirm_refuses_a_member_whose_coverage_ended(agent: Account) -> None:
    """Eligibility is checked again at decision time, not only at intake."""
    member = MemberFactory(member_number="800000008")
    ticket = _registration(member)
    member.coverages.update(end=datetime.date(2001, 1, 1), start=datetime.date(2000, 1, 1))
    _refused("not_eligible", ticket_confirm, reference=ticket.reference, actor=agent)
    _nothing_changed(ticket)


def test_confirm_refuses_a_member_who_already_has_an_account(agent: Account) -> None:
    member = MemberFactory(member_number="800000009")
    ticket = _registration(member)
    MemberAccountFactory(member=member)  # registered meanwhile (another request, a letter)
    _refused("already_registered", ticket_confirm, reference=ticket.reference, actor=agent)
    _nothing_changed(ticket)
    assert Account.objects.filter(member=member).count() == 1


def test_confirm_refuses_a_request_with_no_registry_member(agent: Account) -> None:
    ticket = TicketFactory(member=None, state=TicketState.IDENTITY_MISMATCH)
    _refused("no_registry_member", ticket_confirm, reference=ticket.reference, actor=agent)
    _nothing_changed(ticket, TicketState.IDENTITY_MISMATCH)


def test_confirm_refuses_staff_outside_the_agents_group() -> None:
    ticket = _registration(MemberFactory(member_number="800000010"))
    outsider = StaffFactory(groups=[])
    _refused("forbidden", ticket_confirm, reference=ticket.reference, actor=outsider)
    _nothing_changed(ticket)
    assert not Account.objects.filter(username="800000010").exists()


# --- reject ----------------------------------------------------------------------------------


def test_reject_records_the_reason_and_queues_the_rejection(
    agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    member = MemberFactory(member_number="800000011", last_name="Quasimodo")
    ticket = _registration(member, last_name="Quasimodoo")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reject(
            reference=ticket.reference,
            actor=agent,
            reason=RejectionReason.IDENTITY_NOT_CONFIRMED,
            comment="Name differs from the registry",
        )
    ticket.refresh_from_db()
    assert ticket.state == TicketState.REJECTED
    assert ticket.rejection_reason == RejectionReason.IDENTITY_NOT_CONFIRMED
    assert (ticket.decided_by, ticket.decided_at is not None) == (agent, True)
    [row] = OutboxMessage.objects.all()
    assert (row.template, row.recipient) == (EmailTemplate.REJECTION, "typed@example.org")
    assert not Account.objects.filter(member=member).exists()
    # The member's e-mail reveals nothing from the registry or the internal reason.
    [email] = mail.outbox
    assert email.to == ["typed@example.org"]
    assert ticket.reference in email.body
    [(html, _)] = email.alternatives
    for leak in (
        "identity_not_confirmed",
        "Name differs",
        "Quasimodo,",
        "800000011",
        member.email,
    ):
        assert leak not in email.body and leak not in html and leak not in email.subject, leak


@pytest.mark.parametrize(
    "reason",
    [
        RejectionReason.ALREADY_REGISTERED,
        RejectionReason.NOT_ELIGIBLE,
        RejectionReason.NOT_IN_REGISTRY,
        RejectionReason.SUSPECTED_FRAUD,
    ],
)
def test_every_reason_gets_the_same_neutral_rejection(agent: Account, reason: str) -> None:
    """A distinct e-mail per reason would tell a stranger what the registry holds."""
    member = MemberFactory(member_number="800000012")
    MemberAccountFactory(member=member)
    ticket = _registration(member)
    ticket_reject(reference=ticket.reference, actor=agent, reason=reason)
    [row] = OutboxMessage.objects.all()
    assert row.template == EmailTemplate.REJECTION
    assert row.recipient == "typed@example.org"


@pytest.mark.parametrize("reason", ["", "bogus", RejectionReason.EXPIRED, "IDENTITY_NOT_CONFIRMED"])
def test_reject_refuses_a_reason_outside_the_list(agent: Account, reason: str) -> None:
    ticket = _registration(MemberFactory(member_number="800000013"))
    _refused(
        "invalid_reason", ticket_reject, reference=ticket.reference, actor=agent, reason=reason
    )
    _nothing_changed(ticket)
    assert not OutboxMessage.objects.exists()


def test_reject_refuses_a_ticket_claimed_by_another(agent: Account, second_agent: Account) -> None:
    ticket = _registration(MemberFactory(member_number="800000014"))
    ticket_claim(reference=ticket.reference, actor=second_agent)
    _refused(
        "claimed_by_other",
        ticket_reject,
        reference=ticket.reference,
        actor=agent,
        reason=RejectionReason.DUPLICATE,
    )
    _nothing_changed(ticket)


def test_every_reason_in_the_list_is_accepted(agent: Account) -> None:
    reasons = [r for r in RejectionReason.values if r != RejectionReason.EXPIRED]
    for index, reason in enumerate(reasons):
        ticket = TicketFactory(member=MemberFactory(member_number=f"81000{index:04d}"))
        ticket_reject(reference=ticket.reference, actor=agent, reason=reason)
        assert Ticket.objects.get(pk=ticket.pk).rejection_reason == reason


# --- flag mismatch ---------------------------------------------------------------------------


def test_flag_mismatch_only_from_pending(agent: Account) -> None:
    ticket = _registration(MemberFactory(member_number="800000015"))
    ticket_flag_mismatch(reference=ticket.reference, actor=agent)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.IDENTITY_MISMATCH
    _refused("not_allowed_in_state", ticket_flag_mismatch, reference=ticket.reference, actor=agent)
