"""The API's registry upsert rate and events-feed page time, on PostgreSQL.

    .venv/bin/python benchmarks/api.py --members 20000 --events 1000000

Recreates the dedicated database `guichet_api_bench` (API_BENCH_DATABASE_URL overrides; it is
DROPPED first, and dropped at the end unless --keep) and runs without Redis (local-memory cache,
tasks in-process):

  registry   a base registry of --base members (default 1,000,000, one coverage each) and
             --tickets requests over them (default 1,000,000, a third open), inserted in SQL
             and analysed (production-sized indexes and plans), then POST
             /api/v1/registry/members in batches of --batch (default 1000) of --members new
             members (insert), then the same members with a new last name and e-mail (update:
             an UPDATE and a re-check each), then those rows again (repeat: nothing to write),
             rows per second for each pass:
             first one client through Django's test client in this process (full middleware
             and DRF stack, a real bearer token), then over real HTTP (gunicorn --workers x 1,
             production settings, a token from POST /api/v1/token) with each of --clients
             concurrent clients (default 1,2,4; benchmarks/registry_http.py). The issue's
             target: 20,000 rows/s through the API.
  feed       --events history rows over --events/10 tickets (inserted in SQL), then pages of
             100 read with `after` at 20 evenly spaced cursors (each followed by a full page),
             round robin with the desk's floor page (benchmarks/floor.py: one keyset query, a
             plain template, the same middleware, a logged-in agent) and the bare keyset SELECT
             (SQL only): median and p95 of each. The issue's target: a feed page within 2x the
             desk's floor page. The feed query's plan is printed (a keyset on the primary key).

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

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    database_recreate,
    dropped_unless_kept,
    use_private_services,
)

use_private_services(
    database_variable="API_BENCH_DATABASE_URL",
    database_default="postgres://postgres@127.0.0.1:5432/guichet_api_bench",
    settings="benchmarks.settings",
)

import django  # noqa: E402

from benchmarks.registry_http import (  # noqa: E402
    PASSES,
    bench_registry_http,
    registry_batches,
    seed_registry_base,
)
from benchmarks.series import insert_series  # noqa: E402

PREFIX = "guichet_api_bench"


def recreate_database(url: str) -> None:
    """DROP and CREATE the benchmark database, then migrate it."""
    database_recreate(url, prefix=PREFIX)


def _client(name: str, scopes: list[str]) -> Any:
    """A client with a fresh token (tokens live GUICHET_API_TOKEN_TTL_SECONDS, 15 min: one
    issued before seeding 10M events has expired by the time the feed is read)."""
    from django.test import Client

    from api.clients import client_create, token_issue
    from api.models import ApiClient

    credentials = client_create(name=name, scopes=scopes, calls_per_minute=10**9)
    token, _ = token_issue(client=ApiClient.objects.get(client_id=credentials.client_id))
    return Client(headers={"Authorization": f"Bearer {token}"})


def bench_registry(api: Any, *, first: int, members: int, batch: int) -> None:
    """One client in this process (Django's test client), each of PASSES in turn."""
    batches = {
        changed: registry_batches(first, members, batch, changed=changed)
        for changed in (False, True)
    }
    for label in PASSES:
        started = time.perf_counter()
        for items in batches[label != "insert"]:
            response = api.post(
                "/api/v1/registry/members", {"members": items}, content_type="application/json"
            )
            if response.status_code != 200 or response.json()["rejected"]:
                raise SystemExit(f"registry batch refused: {response.content[:300]!r}")
        elapsed = time.perf_counter() - started
        print(f"registry in-process, 1 client, {label}: {members} rows in {elapsed:.2f} s = "
              f"{members / elapsed:,.0f} rows/s", flush=True)  # fmt: skip


def seed_events(count: int) -> None:
    """Insert count // 10 tickets (open, as the desk's floor reads them), then `count` history rows
    over them in one INSERT ... SELECT, kinds in turn: created, transition, email (public), note,
    claim (not in the feed)."""
    from django.db import connection

    from tickets.models import Ticket

    tickets = max(count // 10, 1)
    started = time.perf_counter()
    # One INSERT ... SELECT (benchmarks/series.py): the columns below from the series, every
    # other one its field's default.
    explicit = {
        "reference": "'REG-' || lpad(g::text, 8, '0')",
        "kind": "'REG'",
        "submitted_last_name": "'Doe'",
        "submitted_first_name": "'Jo'",
        "submitted_email": "'x@example.org'",
        "last_name_key": "'doe'",
        "first_name_key": "'jo'",
        "match_result": "'match'",
        "created_at": "now() - interval '2 days' + g * interval '1 ms'",
        "updated_at": "now() - interval '2 days'",
    }
    insert_series(Ticket, explicit, tickets)
    with connection.cursor() as cursor:
        print(f"seeded {tickets:,} tickets in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO tickets_ticketevent (ticket_id, kind, from_state, to_state, actor_kind,
                reason, body, data, request_id, created_at, previous_hash, row_hash)
            SELECT t.id, (ARRAY['created','transition','email','note','claim'])[1 + g %% 5],
                'pending', 'confirmed', 'system', 'sent', '', '{"template": "credentials"}',
                '', now() - interval '1 hour', '', ''
            FROM generate_series(0, %s - 1) g
            JOIN tickets_ticket t
                ON t.id = (SELECT min(id) FROM tickets_ticket WHERE reference LIKE 'REG-%%')
                    + g %% %s
            """,
            [count, tickets],
        )
        print(f"seeded {count:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    vacuum_analyze(["tickets_ticket", "tickets_ticketevent"])


def vacuum_analyze(tables: list[str]) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")


def feed_cursors(limit: int, count: int = 20) -> list[int]:
    """`count` evenly spaced cursors, each followed by at least `limit` events the feed serves.

    Spacing cursors over the whole id range (as this benchmark once did) put the last ones among
    the newest rows, where fewer than `limit` events remain: those pages are rightly short, and
    the benchmark took them for a broken feed (`--events 1000` failed its page check)."""
    from django.db import connection

    from workflows.services.events import PUBLIC_EVENT_KINDS

    kinds = [str(kind) for kind in PUBLIC_EVENT_KINDS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM tickets_ticketevent WHERE kind = ANY(%s)", [kinds])
        (low,) = cursor.fetchone()
        # The newest cursor still followed by `limit` events: the id just before the
        # limit-th public event from the end.
        cursor.execute(
            "SELECT id FROM tickets_ticketevent WHERE kind = ANY(%s) "
            "ORDER BY id DESC OFFSET %s LIMIT 1",
            [kinds, limit - 1],
        )
        row = cursor.fetchone()
    if low is None or row is None:
        raise SystemExit(f"fewer than {limit} events to page through")
    first, last = low - 1, row[0] - 1
    return [first + (last - first) * i // (count - 1) for i in range(count)]


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1] if len(values) >= 20 else max(values)


FLOOR_SQL = """
    SELECT e.id, e.kind, e.reason, e.from_state, e.to_state, e.data, e.created_at,
           t.reference, t.kind, t.state, m.member_number
    FROM tickets_ticketevent e JOIN tickets_ticket t ON t.id = e.ticket_id
    LEFT JOIN members_member m ON m.id = t.member_id
    WHERE e.id > %s AND e.kind IN ('created', 'transition', 'email')
        AND e.created_at <= now() - interval '2 seconds'
    ORDER BY e.id LIMIT 101
"""


def _staff_client() -> Any:
    """A logged-in agent for the desk's floor page (benchmarks/floor.py), as benchmarks/desk.py."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from members.models import Account
    from tests.second_factor import staff_login

    staff = Account.objects.create_user("bench-agent", "bench password 123", is_staff=True)
    staff.groups.add(Group.objects.get(name="agents"))
    return staff_login(Client(), staff)


def feed_plan(cursor_id: int) -> str:
    """EXPLAIN of the feed's own query (the ORM's SQL), to show the keyset on the primary key."""
    from django.db import connection
    from django.utils import timezone

    from tickets.models import TicketEvent
    from workflows.services.events import EVENT_PUBLIC_FIELDS, PUBLIC_EVENT_KINDS

    query = (
        TicketEvent.objects.filter(
            pk__gt=cursor_id, kind__in=PUBLIC_EVENT_KINDS, created_at__lte=timezone.now()
        )
        .select_related("ticket__member")
        .only(*EVENT_PUBLIC_FIELDS)
        .order_by("pk")[:101]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def bench_feed(events: int, rounds: int) -> dict[str, float]:
    """The feed's page of 100 against the desk's floor page and the bare keyset SELECT."""
    from django.db import connection

    seed_events(events)
    api = _client("bench-feed", ["events:read"])
    cursors = feed_cursors(100)
    desk = _staff_client()
    times: dict[str, list[float]] = {"api": [], "desk floor": [], "sql": []}
    for warmup in (True, *([False] * rounds)):
        for cursor_id in cursors:
            t0 = time.perf_counter()
            response = api.get("/api/v1/events", {"after": cursor_id, "limit": 100})
            api_elapsed = time.perf_counter() - t0
            if response.status_code != 200 or len(response.json()["events"]) != 100:
                raise SystemExit(f"feed page wrong: {response.content[:300]!r}")
            t0 = time.perf_counter()
            floor = desk.get("/bench/floor/")
            floor_elapsed = time.perf_counter() - t0
            if floor.status_code != 200:
                raise SystemExit(f"desk floor answered {floor.status_code}")
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(FLOOR_SQL, [cursor_id])
                cursor.fetchall()
            sql_elapsed = time.perf_counter() - t0
            if not warmup:
                times["api"].append(api_elapsed)
                times["desk floor"].append(floor_elapsed)
                times["sql"].append(sql_elapsed)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"\nfeed's query plan at the middle cursor:\n{feed_plan(cursors[10])}\n")
    print(f"feed at {events:,} events / {max(events // 10, 1):,} tickets, pages of 100, "
          f"{len(times['api'])} pages each (round robin):")  # fmt: skip
    for name, values in times.items():
        print(f"  {name:<11} median {medians[name]:7.1f} ms  p95 {_p95(values) * 1000:7.1f} ms")
    ratio = medians["api"] / medians["desk floor"]
    verdict = "PASS" if ratio <= 2 else "FAIL"
    print(f"  API page / desk floor page (medians): {ratio:.2f}x (target <= 2x: {verdict})")
    print(f"  API page / bare SQL (medians): {medians['api'] / medians['sql']:.1f}x (information)")
    return {**medians, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20000, help="new members per pass")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--base",
        type=int,
        default=1_000_000,
        help="members already in the registry before the timed batches (default 1,000,000)",
    )
    parser.add_argument(
        "--clients",
        default="1,2,4",
        help="registry over HTTP: concurrent clients, one pass per count (default 1,2,4; 0: none)",
    )
    parser.add_argument(
        "--tickets",
        type=int,
        default=1_000_000,
        help="requests over the base registry, a third open (default 1,000,000)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-registry", action="store_true", help="measure the feed only")
    parser.add_argument("--skip-feed", action="store_true", help="measure the registry only")
    add_keep_argument(parser)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        recreate_database(url)
        django.setup()
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        if not args.skip_registry:
            base_first = 100_000_000  # the base registry; the timed members come after it
            seed_registry_base(args.base, base_first, tickets=args.tickets)
            first = base_first + args.base
            api = _client("bench-registry", ["registry:write"])
            bench_registry(api, first=first, members=args.members, batch=args.batch)
            clients = [int(n) for n in args.clients.split(",") if int(n) > 0]
            if clients:
                bench_registry_http(
                    first=first + args.members + 1000,  # the HTTP warm-up writes below this
                    members=args.members,
                    batch=args.batch,
                    clients=clients,
                    workers=args.workers,
                )
        if not args.skip_feed:
            bench_feed(args.events, args.rounds)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
