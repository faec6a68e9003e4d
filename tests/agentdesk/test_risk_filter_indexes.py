"""The desk's `risk` filter reads an index in the queue's order, never a sort of every match.

On PostgreSQL, the query each risk page really runs (captured from the page) is EXPLAINed with
sequential scans, bitmap scans and sorts priced out: what is left is an index read in the
queue's order, if there is one (a tiny test table would otherwise rightly be read whole). Open
queue: the partial `ticket_open_risk_idx`; every ticket (`queue=all`), flagged levels:
`ticket_risky_created_idx` (docs/benchmarks.md: 1,689 buffers read for a page of high-risk
tickets at 1M without it, 54 with).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import TicketFactory
from tickets.models import RiskLevel, TicketState

pytestmark = pytest.mark.django_db


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _queue_plan(client: Client, url: str) -> list[dict[str, Any]]:
    """The plan nodes of the page's query that reads the tickets filtered by risk level."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    queries = [
        q["sql"]
        for q in captured.captured_queries
        if '"tickets_ticket"."risk_level" =' in q["sql"] and q["sql"].lstrip().startswith("SELECT")
    ]
    assert len(queries) == 1, queries
    with connection.cursor() as cursor:
        # Priced out: what remains is a plain index scan in the query's order, if one exists.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + queries[0])
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return _nodes(plan[0]["Plan"])


@pytest.fixture
def tickets_at_every_level() -> None:
    """As in life (and in benchmarks/desk.py): most tickets carry no signal, most are decided."""
    TicketFactory.create_batch(150, risk_level=RiskLevel.NONE, state=TicketState.CONFIRMED)
    TicketFactory.create_batch(20, risk_level=RiskLevel.NONE, state=TicketState.PENDING)
    for level in (RiskLevel.SOME, RiskLevel.HIGH):
        for state in (TicketState.PENDING, TicketState.IDENTITY_MISMATCH, TicketState.CONFIRMED):
            TicketFactory.create_batch(3, risk_level=level, state=state)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket")


# Each risk page and the indexes that serve it in order. "none" is most open tickets: the
# covering open-queue index (risk_level included) serves it as well, with few rows discarded.
RISK_PAGES = {
    "/desk/?risk=none": {"ticket_open_risk_idx", "ticket_open_cover_idx"},
    "/desk/?risk=some": {"ticket_open_risk_idx"},
    "/desk/?risk=high": {"ticket_open_risk_idx"},
    "/desk/?queue=all&risk=some": {"ticket_risky_created_idx"},
    "/desk/?queue=all&risk=high": {"ticket_risky_created_idx"},
}


def test_every_risk_page_is_read_from_an_index_in_queue_order(
    agent_client: Client, tickets_at_every_level: None
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the partial indexes and their plans are PostgreSQL's")
    for url, indexes in RISK_PAGES.items():
        nodes = _queue_plan(agent_client, url)
        scans = {n.get("Index Name") for n in nodes if n.get("Relation Name") == "tickets_ticket"}
        assert scans & indexes, (url, [(n["Node Type"], n.get("Index Name")) for n in nodes])
        assert not any(n["Node Type"] in ("Sort", "Incremental Sort") for n in nodes), url
