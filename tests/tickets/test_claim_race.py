"""Two agents claim or decide the same ticket at the same instant: exactly one wins.

Needs PostgreSQL (row locks; SQLite locks the whole database): skipped with a reason otherwise,
and a failure instead of a skip when CI=true.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import close_old_connections, connection

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tickets.models import EventKind, Ticket, TicketState
from tickets.services import TicketActionError, ticket_claim
from workflows.services.decisions import ticket_confirm, ticket_reject

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        reason = "claiming races need PostgreSQL row locks: set DATABASE_URL to PostgreSQL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
        pytest.skip(reason)


def _race(*attempts: Callable[[], object]) -> list[object]:
    """Run each attempt in its own thread (own connection), released together by a barrier."""
    barrier = threading.Barrier(len(attempts))
    results: list[object] = [None] * len(attempts)

    def run(index: int, attempt: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = attempt()
        except TicketActionError as exc:
            results[index] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    return results


def _restore_agents_group() -> None:
    """transactional_db flushes the groups the data migration made; put `agents` back.

    (Not serialized rollback: its flush skips post_migrate, which leaves the next
    transactional test without permissions.)
    """
    from django.contrib.auth.models import Group, Permission

    migration = importlib.import_module("tickets.migrations.0002_groups")
    group, _created = Group.objects.get_or_create(name="agents")
    for app_label, codename in migration.AGENT_PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


@pytest.fixture
def agents(transactional_db: None) -> tuple[Account, Account]:
    """Two agents; committed rows (the threads use their own connections)."""
    _restore_agents_group()
    return StaffFactory(username="alice"), StaffFactory(username="bob")


@pytest.mark.parametrize("round_", range(5))
def test_two_agents_claiming_at_once_one_wins(agents: tuple[Account, Account], round_: int) -> None:
    alice, bob = agents
    ticket = TicketFactory()
    results = _race(
        lambda: ticket_claim(reference=ticket.reference, actor=alice),
        lambda: ticket_claim(reference=ticket.reference, actor=bob),
    )
    winners = [r for r in results if isinstance(r, Ticket)]
    assert len(winners) == 1, results
    assert [r for r in results if not isinstance(r, Ticket)] == ["claimed_by_other"]
    ticket.refresh_from_db()
    assert ticket.assignee == winners[0].assignee
    assert ticket.events.filter(kind=EventKind.CLAIM).count() == 1


@pytest.mark.parametrize("round_", range(3))
def test_through_pgbouncer_two_agents_claiming_at_once_one_wins(
    agents: tuple[Account, Account], pgbouncer: object, round_: int
) -> None:
    """The row lock is taken and released inside one transaction: safe in transaction pooling."""
    alice, bob = agents
    ticket = TicketFactory()
    results = _race(
        lambda: ticket_claim(reference=ticket.reference, actor=alice),
        lambda: ticket_claim(reference=ticket.reference, actor=bob),
    )
    assert sorted(map(type, results), key=str) == sorted([Ticket, str], key=str), results
    assert ticket.events.filter(kind=EventKind.CLAIM).count() == 1


def test_confirm_and_reject_at_once_one_decision(agents: tuple[Account, Account]) -> None:
    alice, bob = agents
    ticket = TicketFactory()
    results = _race(
        lambda: ticket_confirm(reference=ticket.reference, actor=alice),
        lambda: ticket_reject(reference=ticket.reference, actor=bob, reason="duplicate"),
    )
    assert sum(isinstance(r, Ticket) for r in results) == 1, results
    assert "already_decided" in results
    ticket.refresh_from_db()
    assert ticket.state in (TicketState.CONFIRMED, TicketState.REJECTED)
    assert ticket.events.filter(kind=EventKind.TRANSITION).count() == 1
