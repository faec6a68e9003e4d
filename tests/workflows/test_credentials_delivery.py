"""Sending the codes: the worker makes the password at send time, once per attempt."""

from __future__ import annotations

import datetime
import logging
import re
import smtplib
from collections.abc import Sequence
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client, override_settings
from django.utils import timezone

from members.models import Account, Member
from tests.factories import MemberFactory, TicketFactory
from tickets.models import EventKind, Ticket
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.passwords import DIGITS, LETTERS
from workflows.services.decisions import ticket_confirm
from workflows.services.delivery import outbox_deliver

pytestmark = pytest.mark.django_db

PASSWORD_LINE = re.compile(rf"[{LETTERS}{DIGITS}]{{10}}")
FAILING_BACKEND = f"{__name__}.DisconnectingBackend"
REFUSING_BACKEND = f"{__name__}.RefusingBackend"


class DisconnectingBackend(BaseEmailBackend):
    """A mail server that drops the connection: a temporary failure."""

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses the recipient for good (5xx)."""

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        raise smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"No such user")})


@pytest.fixture
def member() -> Member:
    return MemberFactory(member_number="900000001", last_name="Martin", first_name="Zoë")


@pytest.fixture
def message(agent: Account, member: Member) -> OutboxMessage:
    """The credentials message an agent's confirmation queued (not yet dispatched)."""
    ticket = TicketFactory(member=member, submitted_email="zoe@example.org")
    ticket_confirm(reference=ticket.reference, actor=agent)
    return OutboxMessage.objects.get(template=EmailTemplate.CREDENTIALS)


def _password_in(email: mail.EmailMessage) -> str:
    lines = [line for line in email.body.splitlines() if PASSWORD_LINE.fullmatch(line)]
    candidates = [line for line in lines if sum(c in DIGITS for c in line) == 1]
    assert len(candidates) == 1, email.body
    return candidates[0]


def _account() -> Account:
    return Account.objects.get(username="900000001")


def test_the_e_mail_holds_the_member_id_and_a_password_on_lines_of_their_own(
    message: OutboxMessage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert outbox_deliver(message_id=message.pk) == "sent"
    [email] = mail.outbox
    assert email.to == ["zoe@example.org"]
    lines = email.body.splitlines()
    assert "900000001" in lines
    password = _password_in(email)
    assert len(password) == 10
    assert sum(c in DIGITS for c in password) == 1
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html" and password in html and "900000001" in html
    assert message.ticket.reference in email.subject

    account = _account()
    assert account.check_password(password)
    assert account.must_change_password is True
    expires = account.temporary_password_expires_at
    assert expires is not None
    assert (
        datetime.timedelta(hours=23, minutes=59)
        < expires - timezone.now()
        <= datetime.timedelta(hours=24)
    )
    # The password is in the e-mail only: not in the outbox row, the history or the log.
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT and message.sent_at is not None
    row_text = str(OutboxMessage.objects.filter(pk=message.pk).values().get())
    assert password not in row_text
    for event in Ticket.objects.get(pk=message.ticket_id).events.all():
        assert password not in f"{event.body}{event.data}{event.reason}"
    assert password not in caplog.text
    assert password not in account.password


def test_the_history_records_issue_and_sending(message: OutboxMessage) -> None:
    outbox_deliver(message_id=message.pk)
    events = list(Ticket.objects.get(pk=message.ticket_id).events.order_by("created_at", "id"))
    reasons = [(e.kind, e.reason) for e in events]
    assert (EventKind.OUTCOME, "temporary_password_issued") in reasons
    assert reasons[-1] == (EventKind.EMAIL, "sent")
    assert events[-1].data["recipient"] == "zo***@example.org"


def test_a_second_delivery_of_the_same_message_is_a_no_op(message: OutboxMessage) -> None:
    outbox_deliver(message_id=message.pk)
    password = _password_in(mail.outbox[0])
    assert outbox_deliver(message_id=message.pk) == "skipped"
    assert len(mail.outbox) == 1
    assert _account().check_password(password)
    message.refresh_from_db()
    assert message.attempts == 1


def test_a_retry_issues_a_new_password_and_the_old_one_stops_working(
    message: OutboxMessage,
) -> None:
    outbox_deliver(message_id=message.pk)
    first = _password_in(mail.outbox[0])
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxStatus.PENDING)
    assert outbox_deliver(message_id=message.pk) == "sent"
    second = _password_in(mail.outbox[1])
    assert first != second
    account = _account()
    assert account.check_password(second)
    assert not account.check_password(first)
    issued = Ticket.objects.get(pk=message.ticket_id).events.filter(
        reason="temporary_password_issued"
    )
    assert sorted(e.data["attempt"] for e in issued) == [1, 2]


@override_settings(EMAIL_BACKEND=FAILING_BACKEND, GUICHET_OUTBOX_MAX_ATTEMPTS=3)
def test_an_smtp_failure_backs_off_then_gives_up(message: OutboxMessage) -> None:
    delays = []
    for attempt in (1, 2):
        before = timezone.now()
        assert outbox_deliver(message_id=message.pk) == "failed"
        message.refresh_from_db()
        assert message.status == OutboxStatus.PENDING
        assert message.attempts == attempt
        assert "SMTPServerDisconnected" in message.last_error
        assert message.lease_until is None
        delays.append(message.next_attempt_at - before)
    assert datetime.timedelta(seconds=29) < delays[0] <= datetime.timedelta(seconds=31)
    assert datetime.timedelta(seconds=59) < delays[1] <= datetime.timedelta(seconds=61)

    assert outbox_deliver(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.FAILED, 3)
    assert outbox_deliver(message_id=message.pk) == "skipped"
    assert mail.outbox == []

    email_events = Ticket.objects.get(pk=message.ticket_id).events.filter(kind=EventKind.EMAIL)
    assert [e.reason for e in email_events.order_by("created_at", "id")] == [
        "retrying",
        "retrying",
        "failed",
    ]
    assert all("SMTPServerDisconnected" in e.body for e in email_events)


@override_settings(EMAIL_BACKEND=REFUSING_BACKEND)
def test_a_permanent_refusal_fails_at_once(message: OutboxMessage) -> None:
    assert outbox_deliver(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.FAILED, 1)


def test_a_failed_attempt_leaves_no_working_password(message: OutboxMessage) -> None:
    """The password of a failed attempt was never seen by anyone, and the next one replaces it."""
    with override_settings(EMAIL_BACKEND=FAILING_BACKEND):
        outbox_deliver(message_id=message.pk)
    assert outbox_deliver(message_id=message.pk) == "sent"
    assert _account().check_password(_password_in(mail.outbox[0]))


def _login(client: Client, password: str) -> Any:
    return client.post("/login/", {"username": "900000001", "password": password})


def test_the_temporary_password_opens_a_session_until_it_expires(
    message: OutboxMessage,
) -> None:
    outbox_deliver(message_id=message.pk)
    password = _password_in(mail.outbox[0])

    before = Client()
    response = _login(before, password)
    assert response.status_code == 302
    assert response["Location"] == "/account/password/"
    assert "_auth_user_id" in before.session

    Account.objects.filter(username="900000001").update(
        temporary_password_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    after = Client()
    response = _login(after, password)
    assert response.status_code == 200
    assert "_auth_user_id" not in after.session
