"""Workers racing for one outbox message, directly on PostgreSQL and through PgBouncer in
transaction mode: exactly one claims it, exactly one e-mail leaves, and a long send keeps its lease.

Needs PostgreSQL (row locks, SKIP LOCKED) and, for the `pgbouncer` case, Debian's pgbouncer
(`.ci/run` installs it): skipped with a reason otherwise, a failure when CI=true.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable

import pytest
from django.conf import settings
from django.core import mail
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from tests.factories import StaffFactory, TicketFactory
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.decisions import ticket_confirm
from workflows.services.delivery import outbox_deliver
from workflows.services.outbox import LeaseKeeper, outbox_claim

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RACERS = 8


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        reason = "outbox races need PostgreSQL row locks: set DATABASE_URL to PostgreSQL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(params=["direct", "pgbouncer"])
def topology(request: pytest.FixtureRequest) -> str:
    """The same race on a direct connection and through PgBouncer in transaction mode."""
    if request.param == "pgbouncer":
        request.getfixturevalue("pgbouncer")
    return str(request.param)


def _race(attempt: Callable[[], object], count: int = RACERS) -> list[object]:
    """Run `attempt` in `count` threads (each its own connection), released by a barrier."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = attempt()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    return results


def _credentials_message() -> OutboxMessage:
    ticket = TicketFactory(submitted_email="race@example.org")
    ticket_confirm(reference=ticket.reference, actor=StaffFactory())
    return OutboxMessage.objects.get(ticket=ticket, template=EmailTemplate.CREDENTIALS)


def test_workers_racing_for_a_message_only_one_claims_it(topology: str) -> None:
    message = _credentials_message()
    claims = _race(lambda: outbox_claim(message_id=message.pk))
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    row = OutboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.attempts, row.lease_token) == (OutboxStatus.SENDING, 1, 1)


def test_workers_racing_to_deliver_a_message_send_one_email(topology: str) -> None:
    message = _credentials_message()
    mail.outbox.clear()
    outcomes = _race(lambda: outbox_deliver(message_id=message.pk))
    assert outcomes.count("sent") == 1, outcomes
    assert set(outcomes) <= {"sent", "busy", "skipped"}
    assert len(mail.outbox) == 1
    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.SENT


def test_a_long_send_keeps_its_lease_and_notices_when_it_is_taken(topology: str) -> None:
    message = _credentials_message()
    claimed = outbox_claim(message_id=message.pk)
    assert claimed is not None
    with LeaseKeeper(claimed, interval=0.2) as lease:
        # A lease of 1 s, renewed every 0.2 s: still held after 3 s of "sending".
        OutboxMessage.objects.filter(pk=message.pk).update(
            lease_until=timezone.now() + datetime.timedelta(seconds=1)
        )
        time.sleep(3)
        assert not lease.lost.is_set() and lease.renewals >= 5
        assert outbox_claim(message_id=message.pk) is None
        # Another worker takes the message over (as after a lease expiry): the keeper notices.
        OutboxMessage.objects.filter(pk=message.pk).update(lease_token=claimed.lease_token + 1)
        assert lease.lost.wait(timeout=5)


def test_through_pgbouncer_a_session_lock_outlives_the_client_that_took_it(
    pgbouncer: object,
) -> None:
    """Why the outbox no longer takes a session advisory lock: in transaction mode the lock stays
    on the pooled server session after its client has gone, for the next client to inherit."""
    key = 0x6775, 424242

    def take_and_leave() -> object:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
            return cursor.fetchone()

    assert _race(take_and_leave, count=1) == [(True,)]  # that client has closed its connection
    lock = "FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted"
    with transaction.atomic(), connection.cursor() as cursor:  # one server session throughout
        cursor.execute(f"SELECT pid, pid = pg_backend_pid() {lock}", key)
        holders = cursor.fetchall()
        assert len(holders) == 1
        # Clean up: the pooled session that still holds it is this one, or another one.
        pid, mine = holders[0]
        if mine:
            cursor.execute("SELECT pg_advisory_unlock_all()")
        else:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
