"""Four-eyes on risky confirmations (docs/product.md, docs/security.md test 34).

The rule (tickets/four_eyes.py) is read by the state machine itself, so a risky ticket cannot
reach `confirmed` through `confirm` whoever calls it; only `request_approval` then `approve`
by a different staff member with `tickets.approve_ticket`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client, override_settings
from django_fsm import TransitionNotAllowed, can_proceed, has_transition_perm

from members.models import Account, AccountStatus
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory, TicketFactory
from tests.second_factor import staff_login
from tickets.four_eyes import RULES, confirmation_risks
from tickets.models import Channel, EventKind, Ticket, TicketKind, TicketState
from tickets.services import TicketActionError
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.decisions import (
    ticket_approve,
    ticket_confirm,
    ticket_reject,
    ticket_send_back,
    tickets_expire_stale,
)

pytestmark = pytest.mark.django_db

S = TicketState


def _with_account(**ticket: Any) -> Ticket:
    """A ticket for a member who holds an account whose e-mail on file is onfile@example.org."""
    member = MemberFactory()
    MemberAccountFactory(member=member, email="onfile@example.org")
    return TicketFactory(member=member, **ticket)


def _closure(**extra: Any) -> Ticket:
    return _with_account(kind=TicketKind.CLOSURE, **extra)


# --- the rule ----------------------------------------------------------------------------------
RISKY = {
    "identity_mismatch": lambda: TicketFactory(state=S.IDENTITY_MISMATCH),
    "address_not_on_file": lambda: _with_account(
        kind=TicketKind.RECOVERY, requested_email="new@example.org", secret_answer_verified=True
    ),
    "account_closure": lambda: _closure(),
    "email_change": lambda: _with_account(
        kind=TicketKind.EMAIL_CHANGE, requested_email="new@example.org"
    ),
    "staff_typed": lambda: TicketFactory(channel=Channel.PHONE),
}


@pytest.mark.parametrize("code", list(RISKY))
def test_each_risky_confirmation_is_named_and_needs_a_second_person(code: str) -> None:
    ticket = RISKY[code]()
    assert code in confirmation_risks(ticket)
    assert not can_proceed(ticket.confirm)
    with pytest.raises(TransitionNotAllowed):
        ticket.confirm()
    assert can_proceed(ticket.request_approval)


@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.LETTER, Channel.EMAIL])
def test_every_request_typed_by_staff_is_risky(channel: str) -> None:
    assert confirmation_risks(TicketFactory(channel=channel)) == ["staff_typed"]


def test_a_plain_web_registration_and_codes_to_the_address_on_file_are_not_risky() -> None:
    assert confirmation_risks(TicketFactory()) == []
    # Same address as on file (case does not count), or an unverified answer: codes go to the
    # address on file (workflows.services.decisions), so one person may confirm.
    same = _with_account(
        kind=TicketKind.RECOVERY, requested_email="OnFile@Example.org", secret_answer_verified=True
    )
    unverified = _with_account(kind=TicketKind.RECOVERY, requested_email="new@example.org")
    assert confirmation_risks(same) == confirmation_risks(unverified) == []
    assert can_proceed(same.confirm) and not can_proceed(same.request_approval)


def test_a_high_risk_signal_is_one_more_reason_in_the_same_place() -> None:
    ticket = TicketFactory()
    ticket.risk_level = "high"  # type: ignore[attr-defined]  # the field another branch adds
    assert confirmation_risks(ticket) == ["high_risk"]
    assert not can_proceed(ticket.confirm)


def test_the_setting_widens_the_rule_to_every_confirmation() -> None:
    ticket = TicketFactory()
    with override_settings(GUICHET_FOUR_EYES="all"):
        assert confirmation_risks(ticket) == ["every_confirmation"]
        assert not can_proceed(ticket.confirm)
    assert confirmation_risks(ticket) == []


def test_every_reason_has_a_label() -> None:
    assert all(str(label) for _rule, label in RULES.values())


# --- permissions -------------------------------------------------------------------------------
def _awaiting(maker: Account, **extra: Any) -> Ticket:
    ticket = _closure(**extra)
    ticket_confirm(reference=ticket.reference, actor=maker)
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL
    return ticket


def test_the_maker_may_never_approve_even_as_supervisor_or_superuser(agent: Account) -> None:
    supervisor_maker = StaffFactory(groups=["supervisors", "agents"])
    superuser_maker = StaffFactory(is_superuser=True)
    for maker in (supervisor_maker, superuser_maker):
        ticket = _awaiting(maker)
        for name in ("approve", "send_back"):
            assert not has_transition_perm(getattr(ticket, name), maker)
        with pytest.raises(TicketActionError) as refused:
            ticket_approve(reference=ticket.reference, actor=maker)
        assert refused.value.code == "own_confirmation"
        with pytest.raises(PermissionError):  # even if a caller skipped the permission check
            ticket.approve(maker)
        assert Ticket.objects.get(pk=ticket.pk).state == S.AWAITING_APPROVAL


def test_agents_do_not_approve_by_default_supervisors_do(
    agent: Account, second_agent: Account, supervisor: Account
) -> None:
    ticket = _awaiting(agent)
    assert not has_transition_perm(ticket.approve, second_agent)
    with pytest.raises(TicketActionError) as refused:
        ticket_approve(reference=ticket.reference, actor=second_agent)
    assert refused.value.code == "forbidden"
    assert has_transition_perm(ticket.approve, supervisor)
    assert Permission.objects.filter(codename="approve_ticket", group__name="supervisors").exists()
    assert not Permission.objects.filter(codename="approve_ticket", group__name="agents").exists()


def test_claim_rules_apply_to_the_approver(agent: Account) -> None:
    """An approver without take-over rights cannot act on a ticket another approver holds."""
    approvers = StaffFactory(groups=["agents"]), StaffFactory(groups=["agents"])
    permission = Permission.objects.get(codename="approve_ticket")
    for approver in approvers:
        approver.user_permissions.add(permission)
    ticket = _awaiting(agent)
    Ticket.objects.filter(pk=ticket.pk).update(assignee=approvers[0])
    with pytest.raises(TicketActionError) as refused:
        ticket_approve(reference=ticket.reference, actor=Account.objects.get(pk=approvers[1].pk))
    assert refused.value.code == "claimed_by_other"
    ticket_approve(reference=ticket.reference, actor=Account.objects.get(pk=approvers[0].pk))
    assert Ticket.objects.get(pk=ticket.pk).state == S.CONFIRMED


# --- the services: what happens, what is recorded, what is e-mailed ---------------------------
def test_a_risky_confirmation_is_recorded_and_nothing_is_carried_out(
    agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _closure()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent, comment="asked by phone")
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL
    assert ticket.approval_requested_by == agent and ticket.approval_reasons == ["account_closure"]
    assert ticket.decided_at is None and ticket.decided_by is None
    assert Account.objects.get(member=ticket.member).status == AccountStatus.ACTIVE
    assert not OutboxMessage.objects.filter(ticket=ticket).exists() and mail.outbox == []
    event = ticket.events.get(kind=EventKind.TRANSITION)
    assert (event.from_state, event.to_state, event.actor, event.reason) == (
        S.PENDING,
        S.AWAITING_APPROVAL,
        agent,
        "four_eyes",
    )
    assert event.body == "asked by phone" and event.data == {"risks": ["account_closure"]}


def test_an_approval_carries_out_the_confirmation_and_records_maker_and_approver(
    agent: Account, supervisor: Account, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _awaiting(agent)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_approve(reference=ticket.reference, actor=supervisor, comment="checked")
    ticket.refresh_from_db()
    assert ticket.state == S.CONFIRMED and ticket.decided_by == supervisor
    assert ticket.decided_at is not None
    assert Account.objects.get(member=ticket.member).status == AccountStatus.CLOSED
    [notice] = mail.outbox
    assert notice.to == ["onfile@example.org"]
    assert (
        OutboxMessage.objects.filter(ticket=ticket, template=EmailTemplate.ACCOUNT_CLOSED).count()
        == 1
    )
    approval = ticket.events.filter(kind=EventKind.TRANSITION).last()
    assert approval is not None
    assert (approval.from_state, approval.to_state, approval.actor) == (
        S.AWAITING_APPROVAL,
        S.CONFIRMED,
        supervisor,
    )
    assert approval.data == {"maker": agent.username, "risks": ["account_closure"]}
    assert ticket.events.get(kind=EventKind.OUTCOME).actor == supervisor


def test_a_send_back_needs_a_reason_returns_the_ticket_and_e_mails_nobody(
    agent: Account, supervisor: Account, django_capture_on_commit_callbacks: Any
) -> None:
    mismatch = TicketFactory(state=S.IDENTITY_MISMATCH)
    ticket_confirm(reference=mismatch.reference, actor=agent)
    with pytest.raises(TicketActionError) as refused:
        ticket_send_back(reference=mismatch.reference, actor=supervisor, reason="")
    assert refused.value.code == "invalid_reason"
    with django_capture_on_commit_callbacks(execute=True):
        ticket_send_back(
            reference=mismatch.reference,
            actor=supervisor,
            reason="identity_doubt",
            comment="call the member back",
        )
    mismatch.refresh_from_db()
    assert mismatch.state == S.IDENTITY_MISMATCH  # back where it was confirmed from
    assert mismatch.approval_requested_by is None and mismatch.approval_reasons == []
    assert mail.outbox == [] and not OutboxMessage.objects.filter(ticket=mismatch).exists()
    sent_back = mismatch.events.filter(kind=EventKind.TRANSITION).last()
    assert sent_back is not None
    assert (sent_back.from_state, sent_back.to_state, sent_back.reason, sent_back.actor) == (
        S.AWAITING_APPROVAL,
        S.IDENTITY_MISMATCH,
        "identity_doubt",
        supervisor,
    )
    assert sent_back.data["maker"] == agent.username


def test_an_awaiting_ticket_cannot_be_confirmed_or_rejected_again_by_the_desk(
    agent: Account, second_agent: Account
) -> None:
    ticket = _awaiting(agent)
    for actor in (agent, second_agent):
        with pytest.raises(TicketActionError) as refused:
            ticket_confirm(reference=ticket.reference, actor=actor)
        assert refused.value.code == "awaiting_approval"
        with pytest.raises(TicketActionError):
            ticket_reject(reference=ticket.reference, actor=actor, reason="duplicate")
    assert Ticket.objects.get(pk=ticket.pk).state == S.AWAITING_APPROVAL


def test_only_an_awaiting_ticket_can_be_approved(supervisor: Account) -> None:
    for state in (S.PENDING, S.IDENTITY_MISMATCH):
        ticket = TicketFactory(state=state)
        with pytest.raises(TicketActionError) as refused:
            ticket_approve(reference=ticket.reference, actor=supervisor)
        assert refused.value.code == "not_awaiting_approval"
    decided = TicketFactory(state=S.CONFIRMED)
    with pytest.raises(TicketActionError) as refused:
        ticket_approve(reference=decided.reference, actor=supervisor)
    assert refused.value.code == "already_decided"


def test_expiry_still_applies_while_awaiting_approval(agent: Account) -> None:
    import datetime

    from django.utils import timezone

    ticket = _awaiting(agent)
    old = timezone.now() - datetime.timedelta(days=30)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=old)
    assert tickets_expire_stale() == 1
    ticket.refresh_from_db()
    assert ticket.state == S.REJECTED and ticket.rejection_reason == "expired"
    assert Account.objects.get(member=ticket.member).status == AccountStatus.ACTIVE


# --- the other entry points: the model itself, the admin -----------------------------------------
def test_calling_the_transition_directly_cannot_skip_the_second_person(agent: Account) -> None:
    """What a management command, a shell or a future API would do: the guard still holds."""
    ticket = _closure()
    with pytest.raises(TransitionNotAllowed):
        ticket.confirm()
    assert Ticket.objects.get(pk=ticket.pk).state == S.PENDING
    assert Account.objects.get(member=ticket.member).status == AccountStatus.ACTIVE


def test_the_admin_cannot_move_a_ticket_out_of_awaiting_approval(agent: Account) -> None:
    ticket = _awaiting(agent)
    admin = StaffFactory(is_superuser=True)
    client = Client()
    staff_login(client, admin)
    url = f"/admin/tickets/ticket/{ticket.pk}/change/"
    client.post(url, {"state": S.CONFIRMED, "kind": ticket.kind})
    client.post(
        "/admin/tickets/ticket/", {"action": "delete_selected", "_selected_action": [ticket.pk]}
    )
    assert Ticket.objects.get(pk=ticket.pk).state == S.AWAITING_APPROVAL
