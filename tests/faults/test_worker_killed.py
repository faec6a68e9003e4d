"""docs/security.md §21-22: a worker SIGKILLed at any step of credential issuance loses nothing.

Every ticket ends with a delivered e-mail and exactly one valid temporary password, the one in
the latest e-mail; a second e-mail only when the kill falls after the SMTP accept and before
the sent-mark (the documented duplicate window).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tests.integration.harness import (
    CeleryWorker,
    PgBouncer,
    ScanReport,
    SmtpSink,
    scan_database,
    temporary_password_in,
)
from tickets.models import EventKind, TicketEvent
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.decisions import ticket_confirm

LEASE_SECONDS = 3


def fault_env(point: str, target: str, once: Path) -> dict[str, str]:
    """Short leases and sweeps so recovery takes seconds; the kill happens once."""
    return {
        "GUICHET_ALLOW_FAULT_INJECTION": "1",
        "GUICHET_FAULT_INJECT": point,
        "GUICHET_FAULT_KILL": target,
        "GUICHET_FAULT_ONCE_FILE": str(once),
        "GUICHET_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "GUICHET_OUTBOX_SWEEP_SECONDS": "1",
        "GUICHET_OUTBOX_SWEEP_GRACE_SECONDS": "1",
        "GUICHET_OUTBOX_RETRY_BASE_SECONDS": "1",
        "CELERY_TASK_TIME_LIMIT": "20",
        "CELERY_VISIBILITY_TIMEOUT": "30",
    }


def wait_sent(message: OutboxMessage, timeout: float = 60.0) -> OutboxMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message.refresh_from_db()
        if message.status == OutboxStatus.SENT:
            return message
        time.sleep(0.2)
    raise AssertionError(f"outbox message {message.pk} still {message.status}")


def wait_dead(worker: CeleryWorker, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.process is not None and worker.process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError("the worker was not killed")
        time.sleep(0.1)


@pytest.mark.parametrize("target", ["child", "parent"])
@pytest.mark.parametrize(
    "point", ["after_claim", "after_hash_commit", "after_smtp_accept", "after_sent_mark"]
)
def test_credentials_survive_a_worker_killed_at_each_step(
    point: str,
    target: str,
    tmp_path: Path,
    sole_consumer: None,
    smtp_sink: SmtpSink,
    celery_worker_factory: Callable[..., CeleryWorker],
) -> None:
    _kill_and_recover(point, target, tmp_path, smtp_sink, celery_worker_factory)


@pytest.mark.parametrize("point", ["after_claim", "after_smtp_accept"])
def test_through_pgbouncer_credentials_survive_a_worker_killed(
    point: str,
    tmp_path: Path,
    sole_consumer: None,
    smtp_sink: SmtpSink,
    celery_worker_factory: Callable[..., CeleryWorker],
    pgbouncer_server: PgBouncer,
) -> None:
    """The lease expires with its dead holder and is taken over, behind PgBouncer too (no
    session lock left on a pooled server session to keep the message "busy" forever)."""
    _kill_and_recover(
        point, "child", tmp_path, smtp_sink, celery_worker_factory, bouncer=pgbouncer_server
    )


def _kill_and_recover(
    point: str,
    target: str,
    tmp_path: Path,
    smtp_sink: SmtpSink,
    celery_worker_factory: Callable[..., CeleryWorker],
    bouncer: PgBouncer | None = None,
) -> None:
    once = tmp_path / "killed-once"
    env = fault_env(point, target, once)
    worker = celery_worker_factory(f"fault-{point}-{target}", env=env, bouncer=bouncer)
    recipient = f"{point}.{target}@example.org"
    ticket = TicketFactory(submitted_email=recipient)
    ticket_confirm(reference=ticket.reference, actor=StaffFactory())
    message = OutboxMessage.objects.get(ticket=ticket, template=EmailTemplate.CREDENTIALS)

    deadline = time.monotonic() + 30
    while not once.exists():
        assert time.monotonic() < deadline, (
            f"the fault point was never reached:\n{worker.log_tail()}"
        )
        time.sleep(0.1)
    if target == "parent":
        wait_dead(worker)
        worker.stop()
        worker = celery_worker_factory(f"recovery-{point}", env=env, bouncer=bouncer)

    wait_sent(message)
    time.sleep(LEASE_SECONDS + 2)  # a late redelivery would show up now
    emails = [
        m for m in smtp_sink.messages_to(recipient) if m["X-Guichet-Message"] == str(message.pk)
    ]
    expected = 2 if point == "after_smtp_accept" else 1
    assert len(emails) == expected, [e["Date"] for e in emails]

    account = Account.objects.get(member=ticket.member)
    passwords = [temporary_password_in(e) for e in emails]
    assert account.check_password(passwords[-1])
    for stale in passwords[:-1]:
        assert not account.check_password(stale)

    events = TicketEvent.objects.filter(ticket=ticket)
    issued = events.filter(kind=EventKind.OUTCOME, reason="temporary_password_issued").count()
    assert issued == message.attempts - (1 if point == "after_claim" else 0)
    assert events.filter(kind=EventKind.EMAIL, reason="sent").count() == 1

    report = ScanReport()
    scan_database(passwords, report)
    assert not report.found, report.found
    worker.stop()
