"""Shared fixtures: the personas every test speaks of."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory
from tests.second_factor import staff_login


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
    """Abuse-limit counters live in the cache: every test starts with none spent."""
    cache.clear()


@pytest.fixture(autouse=True)
def _tasks_in_process_unless_integration(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests run Celery tasks in-process even when REDIS_URL is set (`.ci/run` sets it for
    the whole suite); tests marked `integration` publish to Redis for a real worker to run."""
    from desk.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = request.node.get_closest_marker("integration") is None
    yield
    app.conf.task_always_eager = previous
