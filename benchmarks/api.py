"""The API's registry upsert rate and events-feed page time, on PostgreSQL.

    .venv/bin/python benchmarks/api.py --members 20000 --events 1000000

Recreates the dedicated database `guichet_api_bench` (API_BENCH_DATABASE_URL overrides; it is
DROPPED first, and dropped at the end unless --keep), runs without Redis (local-memory cache,
tasks in-process), and calls the API through Django's test client (full middleware and DRF
stack, a real bearer token):

  registry   POST /api/v1/registry/members in batches of --batch (default 1000) new members,
             then the same batches again (updates): rows per second, both passes.
  feed       --events history rows over --events/10 tickets (bulk-inserted), then pages of 100
             read with `after` at 20 evenly spaced cursors: median and p95 per page, against the
             bare keyset floor (the same SELECT ... WHERE id > %s ORDER BY id LIMIT 101 in SQL,
             with the ticket join). The issue's target: the feed within 2x the floor.

Not a test: run it on a quiet machine; the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "API_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/guichet_api_bench"
)
os.environ["REDIS_URL"] = ""
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

import django  # noqa: E402

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    database_recreate,
    dropped_unless_kept,
)

PREFIX = "guichet_api_bench"


def recreate_database(url: str) -> None:
    """DROP and CREATE the benchmark database, then migrate it."""
    database_recreate(url, prefix=PREFIX)


def _client(scopes: list[str]) -> Any:
    from django.test import Client

    from api.clients import client_create, token_issue
    from api.models import ApiClient

    credentials = client_create(name="bench", scopes=scopes, calls_per_minute=10**9)
    token, _ = token_issue(client=ApiClient.objects.get(client_id=credentials.client_id))
    return Client(headers={"Authorization": f"Bearer {token}"})


def bench_registry(api: Any, members: int, batch: int) -> None:
    batches = [
        [
            {
                "member_number": f"{400000000 + n}",
                "last_name": "Lefèvre",
                "first_name": "Zoë",
                "birth_date": "1970-05-17",
                "email": f"m{n}@example.org",
                "coverages": ["health_principal"],
            }
            for n in range(start, min(start + batch, members))
        ]
        for start in range(0, members, batch)
    ]
    for label in ("insert", "update"):
        started = time.perf_counter()
        for items in batches:
            response = api.post(
                "/api/v1/registry/members", {"members": items}, content_type="application/json"
            )
            if response.status_code != 200 or response.json()["rejected"]:
                raise SystemExit(f"registry batch refused: {response.content[:300]!r}")
        elapsed = time.perf_counter() - started
        print(
            f"registry {label}: {members} rows in {elapsed:.2f} s = {members / elapsed:,.0f} rows/s"
        )


def seed_events(count: int) -> tuple[int, int]:
    from django.db import connection

    from tickets.models import Ticket

    tickets = max(count // 10, 1)
    for start in range(0, tickets, 5000):
        Ticket.objects.bulk_create(
            [
                Ticket(
                    reference=f"REG-{n:08d}",
                    kind="REG",
                    submitted_last_name="Doe",
                    submitted_first_name="Jo",
                    submitted_email="x@example.org",
                    match_result="match",
                )
                for n in range(start, min(start + 5000, tickets))
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tickets_ticketevent (ticket_id, kind, from_state, to_state, actor_kind,
                reason, body, data, request_id, created_at, previous_hash, row_hash)
            SELECT t.id, (ARRAY['created','transition','email','note','claim'])[1 + g %% 5],
                'pending', 'confirmed', 'system', 'sent', '', '{"template": "credentials"}',
                '', now() - interval '1 hour', '', ''
            FROM generate_series(0, %s - 1) g
            JOIN tickets_ticket t ON t.id = (SELECT min(id) FROM tickets_ticket) + g %% %s
            """,
            [count, tickets],
        )
        cursor.execute("ANALYZE tickets_ticketevent")
        cursor.execute("SELECT min(id), max(id) FROM tickets_ticketevent")
        low, high = cursor.fetchone()
    return low, high


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1] if len(values) >= 20 else max(values)


def bench_feed(api: Any, events: int, rounds: int) -> None:
    from django.db import connection

    started = time.perf_counter()
    low, high = seed_events(events)
    print(f"seeded {events:,} events in {time.perf_counter() - started:.0f} s")
    cursors = [low + (high - low) * i // 20 for i in range(20)]
    api_times: list[float] = []
    floor_times: list[float] = []
    floor_sql = """
        SELECT e.id, e.kind, e.reason, e.from_state, e.to_state, e.data, e.created_at,
               t.reference, t.kind, m.member_number
        FROM tickets_ticketevent e JOIN tickets_ticket t ON t.id = e.ticket_id
        LEFT JOIN members_member m ON m.id = t.member_id
        WHERE e.id > %s AND e.kind IN ('created', 'transition', 'email')
        ORDER BY e.id LIMIT 101
    """
    for _ in range(rounds):
        for cursor_id in cursors:
            t0 = time.perf_counter()
            response = api.get("/api/v1/events", {"after": cursor_id, "limit": 100})
            api_times.append(time.perf_counter() - t0)
            if response.status_code != 200 or len(response.json()["events"]) != 100:
                raise SystemExit(f"feed page wrong: {response.content[:300]!r}")
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(floor_sql, [cursor_id])
                cursor.fetchall()
            floor_times.append(time.perf_counter() - t0)
    api_median, floor_median = statistics.median(api_times), statistics.median(floor_times)
    print(
        f"feed at {events:,} events, page of 100: API median {api_median * 1000:.1f} ms, "
        f"p95 {_p95(api_times) * 1000:.1f} ms; floor median {floor_median * 1000:.1f} ms, "
        f"p95 {_p95(floor_times) * 1000:.1f} ms; ratio {api_median / floor_median:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    add_keep_argument(parser)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        recreate_database(url)
        django.setup()
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        api = _client(["registry:write", "events:read"])
        bench_registry(api, args.members, args.batch)
        bench_feed(api, args.events, args.rounds)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
