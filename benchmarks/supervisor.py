"""Benchmark of the supervisors' page and the queue CSV export at 10k / 100k / 1M tickets.

PostgreSQL only. Loads synthetic tickets and outbox messages with COPY (psycopg 3), then times
the page (median / p95 server time over repeated requests, time in SQL, number of queries) and
the export of every ticket as CSV (wall time, peak Python memory with tracemalloc); the last
column is the machine's 1-minute load average, since the box is shared.

    .venv/bin/python benchmarks/supervisor.py --sizes 10000 100000 1000000

The data has the shape of a busy desk: a constant intake of `--per-day` tickets a day (so N
tickets span N / per-day days), almost everything older than two days decided, half of the
last two days' tickets open, a codes e-mail for each confirmed registration or recovery. The
database, `guichet_bench5` (SUPERVISOR_BENCH_DATABASE_URL overrides, DATABASE_URL is ignored; a
name not starting guichet_bench is refused), is created if missing, its ticket tables emptied,
and dropped at the end unless --keep (`--skip-load` needs it kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    database_create_if_missing,
    dropped_unless_kept,
    require_benchmark_database,
    use_private_services,
)

PREFIX = "guichet_bench"  # what the final drop accepts; the default is guichet_bench5
# The test settings: production settings without the static manifest (no collectstatic here).
use_private_services(
    database_variable="SUPERVISOR_BENCH_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}5",
    settings="desk.settings_test",
)
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from members.models import Account  # noqa: E402
from supervision.models import AgentDayFigures, DayFigures  # noqa: E402
from supervision.services import figures_rollup  # noqa: E402
from tests.second_factor import staff_login  # noqa: E402
from tickets.models import CROCKFORD_ALPHABET  # noqa: E402

AGENTS = 20
KINDS = (("REG", 50), ("REC", 30), ("ACC", 10), ("EML", 7), ("CLO", 3))
TICKET_COLUMNS = [
    "id",
    "reference",
    "kind",
    "channel",
    "state",
    "language",
    "submitted_member_number",
    "submitted_nir",
    "submitted_last_name",
    "submitted_first_name",
    "submitted_email",
    "last_name_key",
    "first_name_key",
    "requested_email",
    "secret_question",
    "secret_answer_hash",
    "secret_answer_verified",
    "secret_answer_failures",
    "message",
    "match_result",
    "match_details",
    "assignee_id",
    "claimed_at",
    "decided_by_id",
    "decided_at",
    "rejection_reason",
    "created_at",
    "updated_at",
    # NOT NULL columns with a Python-side default only (COPY leaves them NULL otherwise).
    "risk_level",
    "risk_score",
    "risk_signals",
    "recheck_result",
    "recheck_import_id",
    "registry_now_matches",
    "approval_reasons",
    "approval_from_state",
]
# Every ticket's values for the columns above from risk_level on: no signal, no re-check, no
# four-eyes approval.
TICKET_DEFAULTS = ("none", 0, "[]", "", "", False, "[]", "")
OUTBOX_COLUMNS = [
    "ticket_id",
    "template",
    "recipient",
    "language",
    "context",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "created_at",
    "sent_at",
    "lease_token",
    "lease_owner",
]
OUTBOX_DEFAULTS = (0, "")  # not leased


def reference(kind: str, n: int) -> str:
    body = []
    for _ in range(8):
        n, digit = divmod(n, 32)
        body.append(CROCKFORD_ALPHABET[digit])
    return f"{kind}-{''.join(reversed(body))}"


def staff() -> tuple[list[int], Account]:
    agents_group, _ = Group.objects.get_or_create(name="agents")
    supervisors, _ = Group.objects.get_or_create(name="supervisors")
    ids = []
    for i in range(AGENTS):
        account, _ = Account.objects.get_or_create(
            username=f"bench-agent-{i:02d}", defaults={"is_staff": True}
        )
        account.groups.add(agents_group)
        ids.append(account.pk)
    boss, _ = Account.objects.get_or_create(
        username="bench-supervisor", defaults={"is_staff": True}
    )
    boss.groups.add(agents_group, supervisors)
    return ids, boss


def load(n: int, *, per_day: int, agent_ids: list[int], seed: int = 5) -> None:
    """Empty the ticket tables and COPY `n` tickets (and their outbox rows) in."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    span = dt.timedelta(days=n / per_day)
    kinds = [k for k, w in KINDS for _ in range(w)]
    reasons = ["identity_not_confirmed", "not_in_registry", "not_eligible", "duplicate"]
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tickets_ticketevent, workflows_outboxmessage, tickets_ticket, "
            "supervision_dayfigures, supervision_agentdayfigures RESTART IDENTITY CASCADE"
        )
        raw = cursor.cursor
        outbox: list[tuple] = []
        with raw.copy(f"COPY tickets_ticket ({', '.join(TICKET_COLUMNS)}) FROM STDIN") as copy:
            for i in range(1, n + 1):
                created = now - span * (1 - i / n) - dt.timedelta(seconds=1)
                age = now - created
                kind = kinds[i % len(kinds)]
                open_share = 0.5 if age < dt.timedelta(days=2) else 0.002
                state, assignee, claimed, decider, decided, reason = (
                    "pending", None, None, None, None, ""
                )  # fmt: skip
                if rng.random() < open_share:
                    if rng.random() < 0.15:
                        state = "identity_mismatch"
                    if rng.random() < 0.4:
                        assignee = rng.choice(agent_ids)
                        claimed = created + (now - created) * rng.random()
                else:
                    decided = min(created + dt.timedelta(hours=rng.expovariate(1 / 6)), now)
                    if age > dt.timedelta(days=14) and rng.random() < 0.02:
                        state, reason = "rejected", "expired"
                    else:
                        decider = rng.choice(agent_ids)
                        claimed = max(created, decided - dt.timedelta(minutes=rng.uniform(2, 30)))
                        if rng.random() < 0.75:
                            state = "confirmed"
                        else:
                            state, reason = "rejected", rng.choice(reasons)
                copy.write_row(
                    (
                        i, reference(kind, i), kind, "web", state, "fr", f"{500000000 + i}", "",
                        "Martin", "Zoe", f"m{i}@example.org", "martin", "zoe", "", "", "",
                        False, 0, "", "match", "{}", assignee, claimed, decider, decided,
                        reason, created, decided or created, *TICKET_DEFAULTS,
                    )
                )  # fmt: skip
                outbox.append(
                    (i, "acknowledgment", f"m{i}@example.org", "fr", "{}", "sent", 1, "",
                     created, created, created + dt.timedelta(seconds=5))
                )  # fmt: skip
                if state == "confirmed" and kind in ("REG", "REC"):
                    roll = rng.random()
                    if roll < 0.004:
                        status, sent, error = "failed", None, "SMTPRecipientsRefused: 550"
                    elif roll < 0.006:
                        status, sent, error = "pending", None, "SMTPServerDisconnected"
                    else:
                        delay = rng.lognormvariate(4.5, 0.9)  # median ~90 s, a long tail
                        status, sent, error = "sent", decided + dt.timedelta(seconds=delay), ""
                    outbox.append(
                        (i, "credentials", f"m{i}@example.org", "fr", "{}", status,
                         1 if status == "sent" else 3, error, decided, decided, sent)
                    )  # fmt: skip
        with raw.copy(
            f"COPY workflows_outboxmessage ({', '.join(OUTBOX_COLUMNS)}) FROM STDIN"
        ) as copy:
            for row in outbox:
                copy.write_row(row + OUTBOX_DEFAULTS)
        cursor.execute("SELECT setval(pg_get_serial_sequence('tickets_ticket', 'id'), %s)", [n])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tickets_ticket")
        cursor.execute("VACUUM ANALYZE workflows_outboxmessage")


def measure_page(client: Client, repeat: int) -> dict[str, float]:
    client.get("/desk/supervisor/")  # warm caches (plans, templates)
    timings = []
    db_timings = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get("/desk/supervisor/")
            timings.append((time.perf_counter() - start) * 1000)
        db_timings.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"supervisor page answered {response.status_code}")
        queries = len(ctx.captured_queries)
    timings.sort()
    return {
        "median_ms": statistics.median(timings),
        "p95_ms": timings[max(0, round(0.95 * len(timings)) - 1)],
        "queries": queries,
        "db_median_ms": statistics.median(db_timings),
    }


def measure_export(client: Client) -> dict[str, float]:
    url = "/desk/supervisor/export/queue.csv?queue=all"
    start = time.perf_counter()
    response = client.get(url)
    rows = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    response = client.get(url)
    for _chunk in response.streaming_content:
        pass
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": rows - 1,
        "seconds": seconds,
        "peak_mib": peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--skip-load", action="store_true", help="measure the data in place")
    add_keep_argument(parser)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    require_benchmark_database(url, prefix=PREFIX)
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself (its database is dropped afterwards unless --keep)."""
    if connection.vendor != "postgresql":
        sys.exit("SUPERVISOR_BENCH_DATABASE_URL must point at PostgreSQL (e.g. .../guichet_bench5)")
    database_create_if_missing(os.environ["DATABASE_URL"])  # dropped after the last run
    call_command("migrate", verbosity=0)
    agent_ids, boss = staff()
    client = staff_login(Client(), boss)
    print(
        "| tickets | page median | page p95 | of which SQL (median) | queries "
        "| without rollups: median / p95 | rollup task | export rows | export time "
        "| export peak (tracemalloc) | load avg |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        if not args.skip_load:
            start = time.perf_counter()
            load(n, per_day=args.per_day, agent_ids=agent_ids)
            print(f"<!-- loaded {n} in {time.perf_counter() - start:.0f} s -->", flush=True)
        # Without rollups every closed day of the window is computed live (the cold case).
        AgentDayFigures.objects.all().delete()
        DayFigures.objects.all().delete()
        cold = measure_page(client, max(5, args.repeat // 5))
        start = time.perf_counter()
        figures_rollup()  # what the hourly task does; a first run fills the whole window
        rollup_s = time.perf_counter() - start
        load_avg = os.getloadavg()[0]
        page = measure_page(client, args.repeat)
        export = measure_export(client)
        print(
            f"| {n:,} | {page['median_ms']:.1f} ms | {page['p95_ms']:.1f} ms "
            f"| {page['db_median_ms']:.1f} ms | {page['queries']} "
            f"| {cold['median_ms']:.0f} / {cold['p95_ms']:.0f} ms | {rollup_s:.2f} s "
            f"| {export['rows']:,} | {export['seconds']:.1f} s | {export['peak_mib']:.1f} MiB "
            f"| {load_avg:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
