"""What the takeover signals cost at intake, at scale, on PostgreSQL (docs/benchmarks.md).

    .venv/bin/python benchmarks/risk_intake.py --members 1000000 --traces 1000000

Loads --members registry members, each with an account, and --traces intake traces spread over
the last 90 days (random keys, a few shared addresses and networks), with SQL set-returning
functions; VACUUM ANALYZEs; then measures the signals' own work for --runs submissions
(`risk.evidence_gather` + `risk.risk_assess` and the trace insert: the three queries intake
adds): median and p95 milliseconds of each part and of their sum, and the query count, each
against the issue's target (PASS/FAIL: <= 10 ms median, <= 3 queries), and prints the plans.
The database is `guichet_bench_risk` (RISK_BENCH_DATABASE_URL overrides, DATABASE_URL is
ignored; a name not starting guichet_bench_risk is refused), emptied first and dropped at the
end unless --keep (benchmarks/databases.py).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
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

PREFIX = "guichet_bench_risk"
use_private_services(
    database_variable="RISK_BENCH_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
    settings="benchmarks.settings",
)

import django  # noqa: E402

# The targets for what the signals add to one submission at 1M tickets / 1M members.
TARGET_MS = 10.0
TARGET_QUERIES = 3
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)", re.I)


def _load(members: int, traces: int) -> None:
    from django.db import connection

    from tickets.models import Ticket

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE workflows_intaketrace, tickets_ticket, members_account, members_member"
            " CASCADE"
        )
        cursor.execute(
            """
            INSERT INTO members_member (member_number, nir, last_name, first_name, birth_date,
                email, last_name_key, first_name_key, created_at, updated_at)
            SELECT (800000000 + i)::text, '', 'Nom' || i, 'Prenom', DATE '1970-01-01' + (i %% 9000),
                   'm' || i || '@example.org', 'nom' || i, 'prenom', now(), now()
            FROM generate_series(1, %s) AS i
            """,
            [members],
        )
        cursor.execute(
            """
            INSERT INTO members_account (username, member_id, email, first_name, last_name,
                is_staff, is_active, is_superuser, status, must_change_password, secret_question,
                secret_answer_hash, password, created_at)
            SELECT member_number, id, email, '', '', false, true, false, 'active', false, '', '',
                   '!', now()
            FROM members_member
            """
        )
        # Traces need a ticket: one placeholder ticket carries them all (the FK is all we need).
        ticket_id = Ticket.objects.create(kind="REG", reference="REG-BENCH000").pk
        cursor.execute(
            """
            INSERT INTO workflows_intaketrace (ticket_id, member_id, identity_key, email_key,
                network_key, created_at)
            SELECT %s, (SELECT min(id) FROM members_member) + (i %% %s),
                   md5('identity' || (i %% %s)), md5('email' || (i %% (%s / 2))),
                   CASE WHEN i %% 10 = 0 THEN '' ELSE md5('net' || (i %% 50000)) END,
                   now() - (random() * interval '90 days')
            FROM generate_series(1, %s) AS i
            """,
            [ticket_id, members, members, traces, traces],
        )
        cursor.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure the rows a previous run loaded (with --keep), load nothing",
    )
    add_keep_argument(parser)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    require_benchmark_database(url, prefix=PREFIX)
    database_create_if_missing(url)
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from members.models import Account
    from tickets.models import Ticket
    from workflows import risk
    from workflows.models import IntakeTrace

    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        call_command("migrate", verbosity=0)
        if not args.measure_only:
            started = time.perf_counter()
            _load(args.members, args.traces)
            print(f"loaded {args.members:,} members and {args.traces:,} traces "
                  f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        members, traces = Account.objects.count(), IntakeTrace.objects.count()
        ids = list(Account.objects.values_list("pk", flat=True)[: args.runs * 3])
        networks = list(
            IntakeTrace.objects.exclude(network_key="")
            .values_list("network_key", flat=True)
            .distinct()[:1000]
        )
        ticket = Ticket.objects.get(reference="REG-BENCH000")
        rng = random.Random(13)
        added_ms: list[float] = []
        cpu_ms: list[float] = []
        reads_ms: list[float] = []
        insert_ms: list[float] = []
        queries: list[int] = []
        for run in range(args.runs):
            account = Account.objects.select_related("member").get(pk=rng.choice(ids))
            # In turn: the member's own address, another member's address, an unknown one; a
            # network seen in the traces every other time, a fresh one otherwise.
            typed_email = (
                account.email,
                f"m{rng.randrange(1, members)}@example.org",
                f"x{rng.randrange(10**6)}@example.net",
            )[run % 3]
            network = (
                rng.choice(networks)
                if networks and run % 2
                else risk.network_key(f"203.0.{rng.randrange(256)}.{rng.randrange(256)}")
            )
            submission = risk.Submission(
                kind="REC",
                typed_email=typed_email,
                requested_email="",
                member_pk=account.member_id,
                account=account,
                identity=risk.identity_key(
                    member_pk=account.member_id, last_name_key="", first_name_key="", birth=None
                ),
                network=network,
                secret_answer_failures=0,
            )
            # What intake adds, in its own transaction as at intake: the two reads, the
            # (pure) assessment and the trace insert; rolled back so each run sees the same data.
            with transaction.atomic(), CaptureQueriesContext(connection) as captured:
                c0, t0 = time.process_time(), time.perf_counter()
                risk.risk_assess(risk.evidence_gather(submission, now=django.utils.timezone.now()))
                t1 = time.perf_counter()
                IntakeTrace.objects.create(
                    ticket=ticket,
                    member_id=account.member_id,
                    identity_key=submission.identity,
                    email_key=risk.email_key(submission.typed_email),
                    network_key=submission.network,
                )
                t2, c2 = time.perf_counter(), time.process_time()
                transaction.set_rollback(True)
            reads_ms.append((t1 - t0) * 1000)
            insert_ms.append((t2 - t1) * 1000)
            added_ms.append((t2 - t0) * 1000)
            cpu_ms.append((c2 - c0) * 1000)
            queries.append(
                sum(1 for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"]))
            )
        with CaptureQueriesContext(connection) as captured:
            risk.evidence_gather(submission, now=django.utils.timezone.now())
        with connection.cursor() as cursor:
            for query in captured.captured_queries:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query["sql"])
                print("\n".join(row[0] for row in cursor.fetchall()), "\n")

        def q(values: list[float], p: float) -> float:
            return statistics.quantiles(values, n=100)[int(p) - 1]

        median, most = statistics.median(added_ms), max(queries)
        print(
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
            f"{members:,} members with an account, {traces:,} traces, {args.runs} submissions"
        )
        print(
            f"signals (2 reads + assessment): median {statistics.median(reads_ms):.2f} ms, "
            f"p95 {q(reads_ms, 95):.2f} ms"
        )
        print(
            f"trace insert: median {statistics.median(insert_ms):.2f} ms, "
            f"p95 {q(insert_ms, 95):.2f} ms"
        )
        print(
            f"added to a submission: median {median:.2f} ms, p95 {q(added_ms, 95):.2f} ms "
            f"(target <= {TARGET_MS} ms median: {'PASS' if median <= TARGET_MS else 'FAIL'})"
        )
        # This process's CPU time for the same work: what the Python side costs whatever the
        # machine's load (the wall time above waits for a CPU when the machine is oversubscribed;
        # the server's own time is in the plans above).
        print(
            f"of which this process's CPU: median {statistics.median(cpu_ms):.2f} ms, "
            f"p95 {q(cpu_ms, 95):.2f} ms"
        )
        print(f"queries added: {most} (target <= {TARGET_QUERIES}: "
              f"{'PASS' if most <= TARGET_QUERIES else 'FAIL'})")  # fmt: skip


if __name__ == "__main__":
    main()
