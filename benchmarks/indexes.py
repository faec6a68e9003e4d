"""Which tickets-table index each desk and supervisor query uses, on a large table (EXPLAIN).

    .venv/bin/python benchmarks/indexes.py --tickets 300000 --members 300000
    # after a migration that drops indexes, on the same rows (load with --keep first):
    ... benchmarks/indexes.py --measure-only --keep

Loads the registry and tickets with the desk benchmark's loader (benchmarks/desk.py) into
`guichet_bench` (INDEXES_BENCH_DATABASE_URL overrides, DATABASE_URL is ignored; a name not
starting guichet_bench is refused; emptied first, dropped at the end unless --keep), VACUUM
ANALYZEs, then opens
each page as an agent or a supervisor through Django's test client, captures every query that
reads `tickets_ticket`, runs `EXPLAIN (FORMAT JSON)` on it and prints the indexes the plan
scans (a sequential scan of the tickets table is printed as `SEQ SCAN`), then the table's
indexes with their size and how often the run used them. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import desk  # noqa: E402  (the loader; points DATABASE_URL at desk's database)
from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    dropped_unless_kept,
    require_benchmark_database,
    use_private_services,
)

# After desk's import, which set the environment for the desk benchmark (Django is not set up
# yet: the settings are read at run()'s django.setup()), this benchmark's own database.
PREFIX = desk.PREFIX
use_private_services(
    database_variable="INDEXES_BENCH_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
    settings="benchmarks.settings",
)


def _plan_scans(node: dict[str, Any]) -> Iterator[str]:
    relation = node.get("Relation Name")
    if node.get("Index Name"):
        yield node["Index Name"]
    elif node.get("Node Type") == "Seq Scan" and relation == "tickets_ticket":
        yield "SEQ SCAN"
    for child in node.get("Plans", []):
        yield from _plan_scans(child)


def _pages() -> dict[str, tuple[str, str]]:
    """(who, url) per page: the desk queues and filters, search, the supervisors' page, exports."""
    pages = {name: ("agent00", url) for name, url in desk._pages().items() if "floor" not in name}
    pages.update(
        {
            "queue: unassigned": ("agent00", "/desk/?queue=unassigned"),
            "queue: mine": ("agent00", "/desk/?queue=mine"),
            "queue: decided today": ("agent00", "/desk/?queue=decided_today"),
            "queue: all, kind REC": ("agent00", "/desk/?queue=all&kind=REC"),
            "open queue, kind REC": ("agent00", "/desk/?kind=REC"),
            "open queue, channel phone": ("agent00", "/desk/?channel=phone"),
            "supervisors' page": ("supervisor", "/desk/supervisor/"),
            "queue export (first chunk)": ("supervisor", "/desk/supervisor/export/queue.csv"),
        }
    )
    return pages


def explain_pages() -> dict[str, list[str]]:
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from members.models import Account
    from tests.second_factor import staff_login

    supervisor, created = Account.objects.get_or_create(username="supervisor", is_staff=True)
    if created:
        supervisor.groups.add(*Group.objects.filter(name__in=["agents", "supervisors"]))
    used: dict[str, list[str]] = {}
    for name, (who, url) in _pages().items():
        client = Client()
        staff_login(client, Account.objects.get(username=who))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
            if hasattr(response, "streaming_content"):
                next(iter(response.streaming_content))  # header
                next(iter(response.streaming_content))  # first rows: the first chunk's query
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        scans: list[str] = []
        for query in captured.captured_queries:
            sql = query["sql"]
            if "tickets_ticket" not in sql or not sql.lstrip().upper().startswith(
                ("SELECT", "WITH")
            ):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            scans.extend(s for s in _plan_scans(plan[0]["Plan"]) if s not in scans)
        used[name] = scans
    return used


def ticket_indexes() -> list[tuple[str, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
            " WHERE relname = 'tickets_ticket' ORDER BY indexrelname"
        )
        return [(name, size) for name, size in cursor.fetchall()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--members", type=int, default=300_000)
    parser.add_argument("--measure-only", action="store_true", help="load nothing, EXPLAIN only")
    add_keep_argument(parser)
    args = parser.parse_args(argv)
    url = os.environ["DATABASE_URL"]
    require_benchmark_database(url, prefix=PREFIX)
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself (its database is dropped afterwards unless --keep)."""
    desk.django.setup()
    desk.ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.measure_only:
        registry = desk.reset(args.members)
        desk.grow_tickets(registry, 0, args.tickets)
    desk.vacuum_analyze()
    from tickets.models import Ticket

    used = explain_pages()
    indexes = ticket_indexes()
    print(f"## {Ticket.objects.count():,} tickets\n")
    print("| page | indexes scanned on the tickets table (and joins) |\n|---|---|")
    for name, scans in used.items():
        print(f"| {name} | {', '.join(f'`{s}`' for s in scans) or '—'} |")
    every = {s for scans in used.values() for s in scans}
    total = sum(size for _, size in indexes)
    print(f"\n{len(indexes)} indexes on tickets_ticket, {total / 2**20:.0f} MiB:\n")
    print("| index | MiB | used above |\n|---|---|---|")
    for name, size in indexes:
        print(f"| `{name}` | {size / 2**20:.1f} | {'yes' if name in every else ''} |")


if __name__ == "__main__":
    main()
