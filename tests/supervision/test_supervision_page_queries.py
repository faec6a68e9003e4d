"""The supervisor page costs a fixed number of queries, whatever the data."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from supervision.services import figures_rollup
from tests.factories import StaffFactory, TicketFactory
from tests.supervision.supervision_data import SETTINGS, build

pytestmark = pytest.mark.django_db


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/desk/supervisor/")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _more_data() -> None:
    now = timezone.now()
    agents = [StaffFactory() for _ in range(3)]
    for i in range(40):
        agent = agents[i % 3]
        TicketFactory(
            kind=["REG", "REC", "ACC", "EML"][i % 4],
            created_at=now - timezone.timedelta(hours=5 * i + 1),
            state="confirmed" if i % 2 else "pending",
            decided_at=now - timezone.timedelta(hours=5 * i) if i % 2 else None,
            decided_by=agent if i % 2 else None,
            assignee=None if i % 2 else agent,
            claimed_at=None if i % 2 else now,
        )


@override_settings(**{k: v for k, v in SETTINGS.items() if k != "TIME_ZONE"})
def test_the_page_query_count_does_not_grow_with_tickets_agents_or_days(
    supervisor_client: Client, django_assert_num_queries: Any
) -> None:
    build()
    figures_rollup()
    baseline = _queries(supervisor_client)
    _more_data()
    figures_rollup()
    # session, user, the second-factor device (docs/security.md §40), 2 permission lookups,
    # 2 rollup reads, 2 flow (today), promise (SQLite fallback: 2), people (SQLite fallback: 2),
    # backlog 2, claimed, failed e-mails 2, and the session save (savepoint, update, release).
    expected = 21 if connection.vendor == "sqlite" else 19
    with django_assert_num_queries(expected):
        supervisor_client.get("/desk/supervisor/")
    assert baseline == expected
