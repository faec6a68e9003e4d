""" "This was not me": every security e-mail carries a single-use link that freezes the account."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from members.models import Account, AccountStatus, EmailChangeRequest
from members.secret_answers import secret_answer_hash
from tests.factories import MemberAccountFactory
from tickets.models import (
    EventKind,
    MatchResult,
    RejectionReason,
    RiskLevel,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketState,
)
from workflows.models import EmailTemplate, NotMeLink, OutboxMessage, OutboxStatus
from workflows.services.decisions import ticket_approve, ticket_confirm
from workflows.services.delivery import outbox_deliver
from workflows.services.intake import RequestData, request_intake
from workflows.services.not_me import NOT_ME_TEMPLATES

pytestmark = pytest.mark.django_db

LINK = re.compile(r"/account/not-me/([A-Za-z0-9_-]+)/")
PASSWORD = "a long member passphrase"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def account() -> Account:
    account: Account = MemberAccountFactory(secret_answer_hash=secret_answer_hash("Caramel"))
    return account


def send(account: Account, template: str = EmailTemplate.PASSWORD_CHANGED) -> str:
    """Deliver one security e-mail to the account; the link's token it carries."""
    message = OutboxMessage.objects.create(
        template=template, recipient=account.email, language="en", account=account
    )
    assert outbox_deliver(message_id=message.pk) == "sent"
    body = mail.outbox[-1].body
    found = LINK.search(body)
    assert found, body
    assert LINK.search(mail.outbox[-1].alternatives[0][0])  # the HTML part too
    return found.group(1)


def open_ticket(account: Account, kind: str = TicketKind.RECOVERY) -> Ticket:
    member = account.member
    assert member is not None
    return request_intake(
        data=RequestData(
            kind=kind,
            member_number=member.member_number,
            last_name=member.last_name,
            first_name=member.first_name,
            birth_date=member.birth_date,
            email=account.email,
        )
    ).ticket


@pytest.mark.parametrize("template", sorted(NOT_ME_TEMPLATES))
def test_every_security_email_carries_a_single_use_link(account: Account, template: str) -> None:
    context: dict[str, Any] = {}
    if template == EmailTemplate.EMAIL_CHANGE_CONFIRM:
        change = EmailChangeRequest.objects.create(account=account, new_email="n@example.org")
        context = {"email_change_id": change.pk}
    if template == EmailTemplate.EMAIL_CHANGE_PENDING:
        now = timezone.now()
        change = EmailChangeRequest.objects.create(
            account=account,
            new_email="n@example.org",
            confirmed_at=now,
            applies_at=now + datetime.timedelta(hours=72),
        )
        context = {"email_change_id": change.pk}
    message = OutboxMessage.objects.create(
        template=template,
        recipient=account.email,
        language="en",
        account=account,
        context=context,
    )
    outbox_deliver(message_id=message.pk)
    assert LINK.search(mail.outbox[-1].body)
    link = NotMeLink.objects.get(account=account, template=template)
    assert link.expires_at - link.created_at == datetime.timedelta(days=30)
    assert LINK.search(mail.outbox[-1].body).group(1) not in link.token_hash  # type: ignore[union-attr]


def test_following_the_link_changes_nothing_until_confirmed(account: Account) -> None:
    token = send(account)
    page = Client().get(f"/account/not-me/{token}/")
    assert page.status_code == 200
    assert "Freeze my account" in page.content.decode()
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE


def test_confirming_freezes_the_account_and_opens_a_high_risk_access_ticket(
    account: Account,
) -> None:
    in_progress = open_ticket(account)
    token = send(account)
    page = Client().post(f"/account/not-me/{token}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Your account is frozen." in text and "What happens next" in text
    account.refresh_from_db()
    assert account.status == AccountStatus.FROZEN and not account.has_usable_password()
    acc = Ticket.objects.get(kind=TicketKind.ACCESS, member=account.member)
    assert acc.reference in text
    assert (acc.risk_level, acc.match_result) == (RiskLevel.HIGH, MatchResult.ACCOUNT_FROZEN)
    created = TicketEvent.objects.get(ticket=acc, kind=EventKind.CREATED)
    assert created.data["cancelled"] == [in_progress.reference]
    assert any(row["ticket"] == in_progress.reference for row in created.data["history"])
    in_progress.refresh_from_db()
    assert in_progress.state == TicketState.REJECTED
    assert in_progress.rejection_reason == RejectionReason.ACCOUNT_FROZEN
    assert TicketEvent.objects.filter(
        ticket=in_progress, kind=EventKind.TRANSITION, to_state=TicketState.REJECTED
    ).exists()


def test_a_frozen_account_cannot_log_in_and_its_sessions_end(account: Account) -> None:
    session = Client()
    assert session.login(username=account.username, password=PASSWORD, portal="member")
    assert session.get("/account/").status_code == 200
    token = send(account)
    Client().post(f"/account/not-me/{token}/")
    assert session.get("/account/").status_code == 302  # the open session is gone
    assert not Client().login(username=account.username, password=PASSWORD, portal="member")


def test_a_frozen_account_gets_no_recovery(account: Account) -> None:
    Client().post(f"/account/not-me/{send(account)}/")
    ticket = open_ticket(account)
    assert ticket.match_result == MatchResult.ACCOUNT_FROZEN
    assert ticket.state == TicketState.IDENTITY_MISMATCH


def test_codes_queued_before_the_veto_are_never_issued(account: Account) -> None:
    queued = OutboxMessage.objects.create(
        template=EmailTemplate.CREDENTIALS, recipient=account.email, language="en", account=account
    )
    Client().post(f"/account/not-me/{send(account)}/")
    sent_before = len(mail.outbox)
    assert outbox_deliver(message_id=queued.pk) == "failed"
    queued.refresh_from_db()
    assert queued.status == OutboxStatus.FAILED and len(mail.outbox) == sent_before
    account.refresh_from_db()
    assert not account.has_usable_password()


def test_a_pending_email_change_is_vetoed(account: Account) -> None:
    change = EmailChangeRequest.objects.create(account=account, new_email="thief@example.net")
    Client().post(f"/account/not-me/{send(account)}/")
    change.refresh_from_db()
    assert change.outcome == "vetoed" and change.used_at is not None
    account.refresh_from_db()
    assert account.email != "thief@example.net"


def _unchanged(account: Account) -> None:
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert not Ticket.objects.filter(kind=TicketKind.ACCESS, member=account.member).exists()


def test_a_forged_link_is_refused_with_a_clear_page_and_no_change(account: Account) -> None:
    send(account)
    page = Client().post("/account/not-me/forged-token-of-the-right-shape/")
    assert page.status_code == 404
    assert "This link is not valid" in page.content.decode()
    _unchanged(account)


def test_an_expired_link_is_refused(account: Account) -> None:
    token = send(account)
    NotMeLink.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    page = Client().post(f"/account/not-me/{token}/")
    assert page.status_code == 410 and "has expired" in page.content.decode()
    _unchanged(account)


def test_a_replayed_link_is_refused_and_opens_no_second_ticket(account: Account) -> None:
    token = send(account)
    Client().post(f"/account/not-me/{token}/")
    again = Client().post(f"/account/not-me/{token}/")
    assert again.status_code == 410 and "already used" in again.content.decode()
    assert Ticket.objects.filter(kind=TicketKind.ACCESS).count() == 1


def test_a_members_link_freezes_only_that_members_account(account: Account) -> None:
    other: Account = MemberAccountFactory()
    Client().post(f"/account/not-me/{send(other)}/")
    other.refresh_from_db()
    assert other.status == AccountStatus.FROZEN
    _unchanged(account)


def test_the_confirmation_needs_the_csrf_token(account: Account) -> None:
    token = send(account)
    page = Client(enforce_csrf_checks=True).post(f"/account/not-me/{token}/")
    assert page.status_code == 403
    _unchanged(account)


def test_unfreezing_is_an_agents_decision_on_the_access_ticket_approved_by_a_second_person(
    account: Account, agent: Account, supervisor: Account
) -> None:
    Client().post(f"/account/not-me/{send(account)}/")
    recovery = open_ticket(account)
    with pytest.raises(Exception, match="account_frozen"):
        ticket_confirm(reference=recovery.reference, actor=agent)
    acc = Ticket.objects.get(kind=TicketKind.ACCESS, member=account.member)
    ticket_confirm(reference=acc.reference, actor=agent)
    account.refresh_from_db()
    acc.refresh_from_db()
    assert acc.state == TicketState.AWAITING_APPROVAL  # high risk: four-eyes
    assert account.status == AccountStatus.FROZEN
    ticket_approve(reference=acc.reference, actor=supervisor)
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE and account.frozen_at is None
    assert TicketEvent.objects.filter(ticket=acc, reason="account_unfrozen").exists()
    codes = OutboxMessage.objects.get(ticket=acc, template=EmailTemplate.CREDENTIALS)
    assert codes.recipient == account.email
    assert acc.second_agent_reasons() == ["high_risk"]


@pytest.mark.parametrize("kind", [TicketKind.RECOVERY, TicketKind.ACCESS])
def test_later_requests_for_the_member_never_lower_the_unfreeze_ticket_below_four_eyes(
    account: Account, agent: Account, kind: str
) -> None:
    Client().post(f"/account/not-me/{send(account)}/")
    acc = Ticket.objects.get(kind=TicketKind.ACCESS, member=account.member)
    # Two requests: the second sees the first and re-assesses the member's other open tickets.
    open_ticket(account, kind=TicketKind.CLOSURE)
    open_ticket(account, kind=kind)
    acc.refresh_from_db()
    assert acc.risk_level == RiskLevel.HIGH
    assert "member_reported_not_me" in [signal["code"] for signal in acc.risk_signals]
    ticket_confirm(reference=acc.reference, actor=agent)
    acc.refresh_from_db()
    account.refresh_from_db()
    assert acc.state == TicketState.AWAITING_APPROVAL
    assert account.status == AccountStatus.FROZEN
