"""A codes e-mail that fails for good: its password is withdrawn, the ticket says so, and an
agent re-issues codes from the desk (docs/product.md, "Codes"; docs/security.md §12).

A permanent SMTP refusal (5xx) — or the last attempt of a temporary failure — means nobody
received the temporary password the worker issued: it must not stay usable. The withdrawal is an
outcome in the ticket's history; the desk's ticket page shows the failure and a "Re-issue codes"
button, which sends new codes to the e-mail on file (an outcome by the agent).
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client, override_settings

from members.models import Account, Member
from tests.factories import MemberFactory, TicketFactory
from tests.second_factor import staff_login
from tickets.models import EventKind, Ticket
from workflows import passwords
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services import credentials
from workflows.services.decisions import ticket_confirm
from workflows.services.delivery import outbox_deliver

pytestmark = pytest.mark.django_db
REFUSING_BACKEND = f"{__name__}.RefusingBackend"
DISCONNECTING_BACKEND = f"{__name__}.DisconnectingBackend"


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses the recipient for good (5xx)."""

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        raise smtplib.SMTPRecipientsRefused({"zoe@example.org": (550, b"No such user")})


class DisconnectingBackend(BaseEmailBackend):
    """A mail server that drops the connection: a temporary failure."""

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every temporary password the worker issues, as the member would have read it."""
    seen: list[str] = []
    real = passwords.generate_temporary_password

    def recording() -> str:
        seen.append(real())
        return seen[-1]

    monkeypatch.setattr(credentials, "generate_temporary_password", recording)
    return seen


@pytest.fixture
def member() -> Member:
    return MemberFactory(member_number="900000007", last_name="Martin", first_name="Zoë")


@pytest.fixture
def confirmed(agent: Account, member: Member) -> Ticket:
    ticket = TicketFactory(member=member, submitted_email="zoe@example.org")
    ticket_confirm(reference=ticket.reference, actor=agent)
    return ticket


def _codes(ticket: Ticket) -> OutboxMessage:
    return OutboxMessage.objects.filter(ticket=ticket, template=EmailTemplate.CREDENTIALS).latest(
        "id"
    )


def _account() -> Account:
    return Account.objects.get(username="900000007")


def _logs_in(password: str) -> bool:
    response = Client().post("/login/", {"username": "900000007", "password": password})
    return response.status_code == 302


@override_settings(EMAIL_BACKEND=REFUSING_BACKEND)
def test_a_permanent_refusal_withdraws_the_password_nobody_received(
    confirmed: Ticket, issued: list[str]
) -> None:
    assert outbox_deliver(message_id=_codes(confirmed).pk) == "failed"
    [password] = issued
    assert _codes(confirmed).status == OutboxStatus.FAILED
    account = _account()
    assert not account.has_usable_password() and account.temporary_password_expires_at is None
    assert not _logs_in(password)
    withdrawn = confirmed.events.get(kind=EventKind.OUTCOME, reason="temporary_password_withdrawn")
    assert withdrawn.data == {"message": _codes(confirmed).pk}
    assert withdrawn.actor is None  # the system did it
    # The history tells it in order: issued, the e-mail failed, the password withdrawn.
    reasons = list(
        confirmed.events.filter(kind__in=[EventKind.OUTCOME, EventKind.EMAIL])
        .order_by("id")
        .values_list("reason", flat=True)
    )
    assert reasons[-3:] == ["temporary_password_issued", "failed", "temporary_password_withdrawn"]


@override_settings(EMAIL_BACKEND=DISCONNECTING_BACKEND, GUICHET_OUTBOX_MAX_ATTEMPTS=2)
def test_a_temporary_failure_withdraws_only_after_the_last_attempt(
    confirmed: Ticket, issued: list[str]
) -> None:
    message = _codes(confirmed)
    outbox_deliver(message_id=message.pk)
    assert _codes(confirmed).status == OutboxStatus.PENDING
    assert _account().has_usable_password()  # a retry will issue and send a new one
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)
    outbox_deliver(message_id=message.pk)
    assert _codes(confirmed).status == OutboxStatus.FAILED
    assert not _account().has_usable_password()
    assert not any(_logs_in(password) for password in issued)


def test_a_password_the_member_chose_is_never_withdrawn(confirmed: Ticket) -> None:
    account = _account()
    account.set_password("a long member passphrase")
    account.must_change_password = False
    account.save()
    from workflows.services.outbox import outbox_claim, outbox_mark_failed

    # The codes e-mail fails for good after the member has set a password of their own.
    message = outbox_claim(message_id=_codes(confirmed).pk)
    assert message is not None
    outbox_mark_failed(message=message, error="SMTPRecipientsRefused: 550", permanent=True)
    assert _codes(confirmed).status == OutboxStatus.FAILED
    assert _logs_in("a long member passphrase")
    assert not confirmed.events.filter(reason="temporary_password_withdrawn").exists()


@override_settings(EMAIL_BACKEND=REFUSING_BACKEND)
def test_the_ticket_page_shows_it_and_the_agent_re_issues_codes(
    confirmed: Ticket,
    issued: list[str],
    agent: Account,
    agent_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    outbox_deliver(message_id=_codes(confirmed).pk)
    page = agent_client.get(f"/desk/tickets/{confirmed.reference}/").content.decode()
    assert "Codes not delivered" in page or "Codes non remis" in page
    assert f"/desk/tickets/{confirmed.reference}/reissue-codes/" in page

    mail.outbox.clear()
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = agent_client.post(f"/desk/tickets/{confirmed.reference}/reissue-codes/")
    assert response.status_code == 302
    reissued = confirmed.events.get(kind=EventKind.OUTCOME, reason="codes_reissued")
    assert reissued.actor == agent
    [codes] = [m for m in mail.outbox if m.to == ["zoe@example.org"]]
    first, second = issued
    assert second in codes.body and first not in codes.body
    assert _logs_in(second) and not _logs_in(first)
    assert _codes(confirmed).status == OutboxStatus.SENT
    # Delivered now: the button is gone and a second re-issue is refused, and recorded.
    page = agent_client.get(f"/desk/tickets/{confirmed.reference}/").content.decode()
    assert "/reissue-codes/" not in page
    agent_client.post(f"/desk/tickets/{confirmed.reference}/reissue-codes/")
    refused = confirmed.events.filter(kind=EventKind.REFUSED).latest("id")
    assert (refused.reason, refused.data) == ("codes_not_failed", {"action": "reissue-codes"})
    assert confirmed.events.filter(reason="codes_reissued").count() == 1


def test_codes_cannot_be_re_issued_while_the_e_mail_is_on_its_way(
    confirmed: Ticket, agent_client: Client
) -> None:
    agent_client.post(f"/desk/tickets/{confirmed.reference}/reissue-codes/")
    assert OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).count() == 1
    assert confirmed.events.filter(kind=EventKind.REFUSED, reason="codes_not_failed").exists()


@override_settings(EMAIL_BACKEND=REFUSING_BACKEND)
def test_staff_outside_the_agents_group_cannot_re_issue(confirmed: Ticket) -> None:
    from tests.factories import StaffFactory

    outbox_deliver(message_id=_codes(confirmed).pk)
    client = Client()
    staff_login(client, StaffFactory(groups=[]))
    client.post(f"/desk/tickets/{confirmed.reference}/reissue-codes/")
    assert not confirmed.events.filter(reason="codes_reissued").exists()
    assert OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).count() == 1
