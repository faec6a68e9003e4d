"""The mail server down, refusing for now, refusing for good, or slow (docs/security.md §22).

- down, then 4xx: each failed attempt is a "retrying" row on the ticket's history, spaced by
  exponential backoff; once the server accepts, one e-mail is delivered, and its temporary
  password is the only one that works;
- 5xx: the message is `failed` at once, flagged on the ticket's history and listed on the
  supervisors' page;
- slow: a server holding the DATA answer longer than the outbox lease: the sender renews its
  lease meanwhile, so the sweep never hands the message to a second worker, and a second run
  finds the send in progress; still one e-mail — directly and through PgBouncer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tests.integration.harness import CeleryWorker, SmtpSink, free_port, temporary_password_in
from tests.second_factor import staff_login
from tickets.models import EventKind, TicketEvent
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.decisions import ticket_confirm
from workflows.services.delivery import outbox_deliver

FAST_RETRIES = {
    "GUICHET_OUTBOX_SWEEP_SECONDS": "1",
    "GUICHET_OUTBOX_SWEEP_GRACE_SECONDS": "1",
    "GUICHET_OUTBOX_RETRY_BASE_SECONDS": "1",
    "EMAIL_TIMEOUT": "15",
}


@dataclass
class Behaviour:
    """What the server answers next: accept, a reply code for DATA, and a delay before it."""

    reply: str = "250 Message accepted for delivery"
    delay: float = 0.0


class _ScriptedHandler:
    def __init__(self, server: ScriptedSmtp) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.server.behaviour.reply.startswith("550"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        behaviour = self.server.behaviour
        self.server.attempts += 1
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if not behaviour.reply.startswith("250"):
            return behaviour.reply
        return await self.server.sink_handler.handle_DATA(server, session, envelope)


class ScriptedSmtp(SmtpSink):
    """The harness's sink with a script: `behaviour` decides each DATA answer; stop() = down."""

    def __init__(self) -> None:
        super().__init__(port=free_port())
        self.behaviour = Behaviour()
        self.attempts = 0
        from tests.integration.harness import _SinkHandler

        self.sink_handler = _SinkHandler(self)

    def start(self) -> ScriptedSmtp:
        from aiosmtpd.controller import Controller

        self._controller = Controller(_ScriptedHandler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def history(ticket_id: int, reason: str) -> list[TicketEvent]:
    return list(
        TicketEvent.objects.filter(
            ticket_id=ticket_id, kind=EventKind.EMAIL, reason=reason
        ).order_by("created_at", "id")
    )


def confirmed_credentials(recipient: str) -> OutboxMessage:
    ticket = TicketFactory(submitted_email=recipient)
    ticket_confirm(reference=ticket.reference, actor=StaffFactory())
    return OutboxMessage.objects.get(ticket=ticket, template=EmailTemplate.CREDENTIALS)


def test_mail_server_down_then_refusing_is_retried_with_backoff_until_delivered(
    sole_consumer: None, celery_worker_factory: Callable[..., CeleryWorker]
) -> None:
    smtp = ScriptedSmtp()  # not started: connection refused
    celery_worker_factory("smtp-down", env={**FAST_RETRIES, "EMAIL_URL": smtp.url})
    message = confirmed_credentials("down.then.back@example.org")

    wait_for(lambda: len(history(message.ticket_id, "retrying")) >= 2, 40, "two retries")
    smtp.behaviour = Behaviour(reply="451 4.3.0 Try again later")
    smtp.start()
    try:
        wait_for(lambda: smtp.attempts >= 1, 40, "an attempt refused with 451")
        smtp.behaviour = Behaviour()
        wait_for(
            lambda: OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.SENT,
            60,
            "delivery",
        )
        time.sleep(2)  # a late duplicate would arrive now
        message.refresh_from_db()
        retries = history(message.ticket_id, "retrying")
        assert len(retries) == message.attempts - 1 >= 3
        assert [e.data["attempt"] for e in retries] == list(range(1, message.attempts))
        assert "ConnectionRefusedError" in retries[0].body
        assert any("451" in e.body for e in retries)
        # Backoff: the gap before attempt n+1 is at least base·2^(n-1) seconds (base 1 s).
        gaps = [
            (b.created_at - a.created_at).total_seconds() for a, b in itertools.pairwise(retries)
        ]
        assert all(gap >= 2 ** (n - 1) - 0.05 for n, gap in enumerate(gaps, start=1)), gaps
        assert len(history(message.ticket_id, "sent")) == 1
        assert len(history(message.ticket_id, "failed")) == 0

        delivered = [m for m in smtp.snapshot() if m["X-Guichet-Message"] == str(message.pk)]
        assert len(delivered) == 1
        account = Account.objects.get(member=message.ticket.member)
        assert account.check_password(temporary_password_in(delivered[0]))
    finally:
        smtp.stop()


def test_a_permanent_refusal_fails_the_message_and_flags_it_to_supervisors(
    sole_consumer: None, celery_worker_factory: Callable[..., CeleryWorker]
) -> None:
    smtp = ScriptedSmtp().start()
    smtp.behaviour = Behaviour(reply="550 5.1.1 Mailbox unavailable")
    try:
        celery_worker_factory("smtp-550", env={**FAST_RETRIES, "EMAIL_URL": smtp.url})
        message = confirmed_credentials("no.such.mailbox@example.org")
        wait_for(
            lambda: OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.FAILED,
            40,
            "the permanent failure",
        )
        time.sleep(3)  # the sweep must not pick a failed message up again
        message.refresh_from_db()
        assert message.status == OutboxStatus.FAILED
        assert message.attempts == 1
        assert "550" in message.last_error
        failed = history(message.ticket_id, "failed")
        assert len(failed) == 1 and "550" in failed[0].body
        assert history(message.ticket_id, "retrying") == []
        assert smtp.snapshot() == []
        reference = message.ticket.reference

        supervisor = Client()
        staff_login(supervisor, StaffFactory(groups=["supervisors"]))
        page = supervisor.get("/desk/supervisor/")
        assert page.status_code == 200
        html = page.content.decode()
        table = html[html.index('id="troubled-emails"') :]
        table = table[: table.index("</table>")]
        assert reference in table and "550" in table

        agent = Client()
        staff_login(agent, StaffFactory())
        ticket_page = agent.get(f"/desk/tickets/{reference}/").content.decode()
        flagged = ticket_page[ticket_page.index('id="history-title"') :]
        flagged = flagged[flagged.index("event-email") :]
        flagged = flagged[: flagged.index("</li>")]
        assert "failed" in flagged and "credentials" in flagged and "550" in flagged, flagged
    finally:
        smtp.stop()


@pytest.mark.parametrize("database", ["direct", "pgbouncer"])
def test_a_mail_server_slower_than_the_lease_still_gets_one_email(
    database: str,
    request: pytest.FixtureRequest,
    sole_consumer: None,
    celery_worker_factory: Callable[..., CeleryWorker],
) -> None:
    bouncer = request.getfixturevalue("pgbouncer_server") if database == "pgbouncer" else None
    smtp = ScriptedSmtp().start()
    # A 6 s lease renewed every 2 s: a renewal may be late by up to 4 s on a loaded machine
    # before the lease lapses; the mail server takes 14 s, over twice the lease.
    smtp.behaviour = Behaviour(delay=14.0)
    env = {**FAST_RETRIES, "EMAIL_URL": smtp.url, "GUICHET_OUTBOX_LEASE_SECONDS": "6"}
    try:
        workers = [
            celery_worker_factory("slow-smtp-1", env=env, bouncer=bouncer),
            celery_worker_factory("slow-smtp-2", env=env, beat=False, bouncer=bouncer),
        ]
        message = confirmed_credentials("slow.server@example.org")
        wait_for(lambda: smtp.attempts >= 1, 30, "the slow DATA")
        time.sleep(8)  # past the 6 s lease, and the 1 s sweep: the sender renewed it meanwhile
        row = OutboxMessage.objects.get(pk=message.pk)
        assert row.status == OutboxStatus.SENDING and row.lease_token == 1
        assert row.lease_until is not None and row.lease_until > timezone.now()
        # A second run (a redelivered task) finds the send in progress and sends nothing.
        assert outbox_deliver(message_id=message.pk) == "busy"
        wait_for(
            lambda: OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.SENT,
            60,
            "delivery",
        )
        time.sleep(3)  # a late duplicate would arrive now
        message.refresh_from_db()
        delivered = [m for m in smtp.snapshot() if m["X-Guichet-Message"] == str(message.pk)]
        assert len(delivered) == 1, f"{len(delivered)} e-mails for one message"
        assert smtp.attempts == 1
        assert (message.attempts, message.lease_token) == (1, 1)
        account = Account.objects.get(member=message.ticket.member)
        assert account.check_password(temporary_password_in(delivered[0]))
        assert len(history(message.ticket_id, "sent")) == 1
        logs = "".join(worker.log_text() for worker in workers)
        assert "lost its lease" not in logs and "lease renewal failed" not in logs
    finally:
        smtp.stop()
