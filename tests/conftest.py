"""Shared fixtures: the personas every test speaks of."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from django.core.cache import cache, caches
from django.test import Client

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory
from tests.second_factor import staff_login

if TYPE_CHECKING:
    from tests.integration.harness import PgBouncer


@pytest.fixture
def agent(db: None) -> Account:
    return StaffFactory(username="alice")


@pytest.fixture
def second_agent(db: None) -> Account:
    return StaffFactory(username="bob")


@pytest.fixture
def supervisor(db: None) -> Account:
    return StaffFactory(username="sam", groups=["supervisors", "agents"])


@pytest.fixture
def member_account(db: None) -> Account:
    """A registered member whose password is 'a long member passphrase'."""
    return MemberAccountFactory()


@pytest.fixture
def stranger(db: None) -> Account:
    """Another registered member."""
    return MemberAccountFactory(member=MemberFactory(last_name="Autre", first_name="Paul"))


@pytest.fixture
def agent_client(agent: Account) -> Client:
    return staff_login(Client(), agent)


@pytest.fixture
def supervisor_client(supervisor: Account) -> Client:
    return staff_login(Client(), supervisor)


@pytest.fixture
def member_client(member_account: Account) -> Client:
    client = Client()
    client.force_login(member_account)
    return client


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Abuse-limit counters live in the limits store: every test starts with none spent."""
    cache.clear()
    caches["limits"].clear()


@pytest.fixture(autouse=True)
def _tasks_in_process_unless_integration(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests run Celery tasks in-process even when REDIS_URL is set (`.ci/run` sets it for
    the whole suite); tests marked `integration` publish to Redis for a real worker to run."""
    from desk.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = request.node.get_closest_marker("integration") is None
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def pgbouncer_server(django_db_setup: None) -> Iterator[PgBouncer]:
    """The session's private PgBouncer (transaction mode) in front of DATABASE_URL's server.

    Started on first use only (a spare port, or PGBOUNCER_TEST_PORT); see `pgbouncer`. Stopped
    before the test database is dropped (its pooled server sessions would hold it open).
    """
    from tests.integration.harness import PgBouncer, in_ci, pgbouncer_binary, require_services

    require_services()
    if pgbouncer_binary() is None:
        reason = "Debian's pgbouncer is not installed (`.ci/run` installs it)"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
        pytest.skip(reason)
    from django.conf import settings

    default = settings.DATABASES["default"]
    bouncer = PgBouncer(
        upstream_host=str(default.get("HOST") or "127.0.0.1"),
        upstream_port=int(default.get("PORT") or 5432),
    ).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def pgbouncer(pgbouncer_server: PgBouncer, django_db_setup: None) -> Iterator[PgBouncer]:
    """This test's own threads and connections reach the test database through PgBouncer.

    The `default` alias is pointed at PgBouncer (server-side cursors off, as in production
    behind it) for the test's body, and put back before the database is flushed.
    """
    from django.db import connection, connections

    settings_dict = connection.settings_dict
    saved = {key: settings_dict.get(key) for key in ("HOST", "PORT", "DISABLE_SERVER_SIDE_CURSORS")}
    connections.close_all()
    settings_dict.update(pgbouncer_server.database_settings(settings_dict))
    yield pgbouncer_server
    connections.close_all()
    settings_dict.update(saved)
