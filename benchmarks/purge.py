"""Purge and archive benchmark: the retention purge and `archive_history` on a large history.

    .venv/bin/python benchmarks/purge.py --rows 10000000

Fills a throwaway database (`guichet_bench_purge`, PURGE_BENCH_DATABASE_URL overrides,
DATABASE_URL is ignored; a name not starting guichet_bench is refused) fast, in SQL
(INSERT … SELECT generate_series): `--rows` history rows in chains of `--events-per-ticket`
(decided tickets spread over `--months` months), one sent e-mail per ticket (its address to
redact) and `--sessions` expired sessions. The history rows
are written with their real hash chain, computed in SQL exactly as
`TicketEvent.canonical_payload` does (the append-only trigger only forbids UPDATE and DELETE), so
`verify_history` accepts them (`--verify-database` checks the whole table: slow at 10M).

Then, with a logged-in agent's desk (queue and a ticket page, Django's test client in this
process) timed all along: idle, during `manage.py purge_retention`, and during
`manage.py archive_history --before` the `--archive-months`-th month (the oldest months, month by
month), both run as their own processes whose resident memory is sampled from /proc every 0.2 s.
Printed: rows/s, peak RSS and RSS over time (constant memory), desk p95 idle vs during (target
≤ 2x), and `verify_history --archive` on every file written. The database is emptied first and
dropped at the end unless --keep; writes var/bench/purge.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    database_create_if_missing,
    dropped_unless_kept,
    require_benchmark_database,
    use_private_services,
)

PREFIX = "guichet_bench"  # what the final drop accepts; the default is guichet_bench_purge
use_private_services(
    database_variable="PURGE_BENCH_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}_purge",
    settings="benchmarks.settings",
)

import django  # noqa: E402

FIRST_MONTH = "2023-01-01"
# One ticket's chain, step by step: (kind, from_state, to_state, reason, body); steps past the
# fifth are notes. The decision (decided_at) is the fourth step.
STEPS = [
    ("created", "", "pending", "", ""),
    ("claim", "", "", "", ""),
    ("note", "", "", "", "called the member back"),
    ("transition", "pending", "confirmed", "", ""),
    ("outcome", "", "", "account_created", ""),
]
NOTE = ("note", "", "", "", "a later note")

# `TicketEvent.canonical_payload` in SQL: json.dumps(sort_keys=True, ensure_ascii=True) of plain
# ASCII values, created_at as Python's isoformat() of a whole-second UTC datetime.
CHAIN_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_history_chain(tid bigint, t0 timestamptz, n int)
RETURNS TABLE (
    ticket_id bigint, kind text, from_state text, to_state text, actor_kind text, reason text,
    body text, request_id text, created_at timestamptz, previous_hash text, row_hash text
) LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    kinds text[] := %(kinds)s;
    froms text[] := %(froms)s;
    tos text[] := %(tos)s;
    reasons text[] := %(reasons)s;
    bodies text[] := %(bodies)s;
    step int;
    i int;
    prev text := '';
    ts timestamptz;
    payload text;
    rid text := 'bench-' || tid;
BEGIN
    FOR step IN 1..n LOOP
        i := least(step, array_length(kinds, 1));
        ts := t0 + make_interval(mins => step - 1);
        payload := '{"actor": null, "actor_kind": "system", "body": "' || bodies[i]
            || '", "created_at": "' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
            || '+00:00", "data": {}, "from": "' || froms[i] || '", "kind": "' || kinds[i]
            || '", "previous": "' || prev || '", "reason": "' || reasons[i]
            || '", "request_id": "' || rid || '", "ticket": ' || tid || ', "to": "' || tos[i]
            || '"}';
        ticket_id := tid; kind := kinds[i]; from_state := froms[i]; to_state := tos[i];
        actor_kind := 'system'; reason := reasons[i]; body := bodies[i]; request_id := rid;
        created_at := ts; previous_hash := prev;
        row_hash := encode(sha256(convert_to(payload, 'UTF8')), 'hex');
        prev := row_hash;
        RETURN NEXT;
    END LOOP;
END $$;
"""


def _sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE members_member, members_coverage, members_account, tickets_ticket, "
            "tickets_ticketevent, workflows_outboxmessage, workflows_requestalias, "
            "django_session RESTART IDENTITY CASCADE"
        )


def fill(*, rows: int, per_ticket: int, months: int, sessions: int) -> dict[str, float]:
    """Tickets, their hash-chained history, one sent e-mail each, expired sessions; in SQL."""
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from members.models import Account
    from tests.factories import TicketFactory
    from tickets.models import Ticket, TicketState
    from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus

    tickets = max(1, rows // per_ticket)
    agent = Account.objects.create_user("agent00", "bench password 123", is_staff=True)
    agent.groups.add(Group.objects.get(name="agents"))
    template = TicketFactory(state=TicketState.CONFIRMED, member=None)
    message = OutboxMessage.objects.create(
        ticket=template,
        template=EmailTemplate.ACKNOWLEDGMENT,
        recipient="member@example.org",
        language="fr",
        status=OutboxStatus.SENT,
    )
    steps = [*STEPS, *[NOTE] * max(0, per_ticket - len(STEPS))][:per_ticket]
    figures: dict[str, float] = {}
    # Every column copied from the template ticket, but these (one decided ticket per row).
    overridden = {"id", "reference", "created_at", "updated_at", "decided_at", "state", "member_id"}
    ticket_columns = [f.column for f in Ticket._meta.concrete_fields if f.column not in overridden]
    has_updated = any(f.column == "updated_at" for f in Ticket._meta.concrete_fields)
    span_minutes = months * 30 * 24 * 60
    with connection.cursor() as cursor:
        # Secondary indexes are built once at the end: much faster than row by row.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN"
            " ('tickets_ticket', 'tickets_ticketevent', 'workflows_outboxmessage')"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        # Ticket g is created at a minute spread evenly over the months, decided 3 min later.
        created = (
            f"(timestamptz '{FIRST_MONTH} 00:00+00' + make_interval(mins => "
            f"((g::bigint * 7919) %% {span_minutes})::int))"
        )
        updated = "updated_at, " if has_updated else ""
        cursor.execute(
            f"""
            INSERT INTO tickets_ticket (reference, created_at, {updated}
                decided_at, state, member_id, {", ".join(ticket_columns)})
            SELECT 'REG-' || lpad(upper(to_hex(g)), 8, '0'), {created},
                {created + ", " if has_updated else ""}{created} + interval '3 minutes',
                'confirmed', NULL, {", ".join("t." + c for c in ticket_columns)}
            FROM tickets_ticket t, generate_series(1, %s) g WHERE t.id = %s
            """,  # noqa: S608 - our own column names and numbers
            [tickets, template.pk],
        )
        figures["tickets_s"] = time.perf_counter() - started
        cursor.execute("DELETE FROM workflows_outboxmessage WHERE id = %s", [message.pk])
        cursor.execute("DELETE FROM tickets_ticketevent WHERE ticket_id = %s", [template.pk])
        cursor.execute("DELETE FROM tickets_ticket WHERE id = %s", [template.pk])
        cursor.execute(
            CHAIN_FUNCTION
            % {
                "kinds": _sql_array([s[0] for s in steps]),
                "froms": _sql_array([s[1] for s in steps]),
                "tos": _sql_array([s[2] for s in steps]),
                "reasons": _sql_array([s[3] for s in steps]),
                "bodies": _sql_array([s[4] for s in steps]),
            }
        )
        started = time.perf_counter()
        # Chunks of tickets, each its own statement: progress shows, no giant transaction.
        chunk = 200_000
        cursor.execute("SELECT min(id), max(id) FROM tickets_ticket")
        low, high = cursor.fetchone()
        for first in range(low, high + 1, chunk):
            with transaction.atomic():
                cursor.execute(
                    """
                    INSERT INTO tickets_ticketevent (ticket_id, kind, from_state, to_state,
                        actor_id, actor_kind, reason, body, data, request_id, created_at,
                        previous_hash, row_hash)
                    SELECT c.ticket_id, c.kind, c.from_state, c.to_state, NULL, c.actor_kind,
                        c.reason, c.body, '{}'::jsonb, c.request_id, c.created_at,
                        c.previous_hash, c.row_hash
                    FROM tickets_ticket t,
                        LATERAL bench_history_chain(t.id, t.decided_at - interval '3 minutes', %s) c
                    WHERE t.id BETWEEN %s AND %s
                    """,
                    [per_ticket, first, first + chunk - 1],
                )
            done = min(high, first + chunk - 1) - low + 1
            print(
                f"#   history: {done * per_ticket:,} rows ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        figures["history_s"] = time.perf_counter() - started
        started = time.perf_counter()
        _outbox_fill(cursor)
        figures["outbox_s"] = time.perf_counter() - started
        cursor.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) "
            "SELECT 'bench' || lpad(g::text, 35, '0'), 'e30:bench', now() - interval '1 day' "
            "FROM generate_series(1, %s) g",
            [sessions],
        )
        started = time.perf_counter()
        for _name, definition in indexes:
            cursor.execute(definition)
        figures["indexes_s"] = time.perf_counter() - started
    return figures


def _outbox_fill(cursor: Any) -> None:
    """One sent acknowledgment per ticket, its address still there (what the purge redacts)."""
    from workflows.models import OutboxMessage

    fields = {f.column: f for f in OutboxMessage._meta.concrete_fields}
    values: dict[str, str] = {
        "ticket_id": "t.id",
        "created_at": "t.decided_at",
        "sent_at": "t.decided_at + interval '1 minute'",
        "status": "'sent'",
        "template": "'acknowledgment'",
        "recipient": "'member' || t.id || '@example.org'",
        "language": "'fr'",
        "context": "'{}'::jsonb",
    }
    columns: list[str] = []
    expressions: list[str] = []
    for column, field in fields.items():
        if column == "id":
            continue
        if column in values:
            expression = values[column]
        elif column.endswith("_at") and not field.null:
            expression = "t.decided_at"
        elif field.null:
            expression = "NULL"
        else:
            default = field.get_default()
            if isinstance(default, bool):
                expression = "true" if default else "false"
            elif isinstance(default, int):
                expression = str(default)
            elif isinstance(default, (dict, list)):
                expression = "'" + json.dumps(default) + "'::jsonb"
            else:
                expression = "'" + str(default).replace("'", "''") + "'"
        columns.append(column)
        expressions.append(expression)
    cursor.execute(
        f"INSERT INTO workflows_outboxmessage ({', '.join(columns)}) "  # noqa: S608 - ours
        f"SELECT {', '.join(expressions)} FROM tickets_ticket t"
    )


def vacuum_analyze() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {"host": db["HOST"] or None, "port": db["PORT"] or None, "user": db["USER"]}
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as conn:
        for table in ("tickets_ticket", "tickets_ticketevent", "workflows_outboxmessage"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


class Desk:
    """A logged-in agent timing the queue and a ticket page (with its history) round-robin."""

    def __init__(self) -> None:
        from django.test import Client

        from members.models import Account
        from tests.second_factor import staff_login
        from tickets.models import Ticket

        self.client = staff_login(Client(), Account.objects.get(username="agent00"))
        newest = Ticket.objects.order_by("-id").values_list("reference", flat=True).first()
        self.pages = ["/desk/", f"/desk/tickets/{newest}/"]
        for url in self.pages:
            response = self.client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
        self.turn = 0

    def one(self) -> float:
        url = self.pages[self.turn % len(self.pages)]
        self.turn += 1
        started = time.perf_counter()
        response = self.client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code} during the run")
        return elapsed


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in KiB; (0, 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return (
        int(fields.get("VmRSS", "0 kB").split()[0]),
        int(fields.get("VmHWM", "0 kB").split()[0]),
    )


def run_measured(command: list[str], desk: Desk) -> dict[str, Any]:
    """Run a manage.py command as its own process; time the desk and sample its memory."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timings: list[float] = []
    samples: list[tuple[float, int]] = []
    peak = 0
    next_sample = 0.0
    while process.poll() is None:
        now = time.perf_counter() - started
        if now >= next_sample:
            rss, hwm = _rss_kib(process.pid)
            if rss:
                samples.append((now, rss))
                peak = max(peak, hwm, rss)
            next_sample = now + 0.2
        timings.append(desk.one())
    output = process.communicate()[0]
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {
        "seconds": elapsed,
        "output": output,
        "desk_ms": timings,
        "rss_samples_kib": samples,
        "peak_rss_kib": peak,
    }


def _rss_over_time(samples: list[tuple[float, int]]) -> str:
    if not samples:
        return "(too short to sample)"
    picks = [samples[min(len(samples) - 1, int(len(samples) * q))] for q in (0.1, 0.5, 0.9)]
    return ", ".join(f"{t:.0f} s: {rss / 1024:.0f} MiB" for t, rss in picks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="history rows to fill")
    parser.add_argument("--events-per-ticket", type=int, default=5)
    parser.add_argument("--months", type=int, default=24, help="months the tickets spread over")
    parser.add_argument(
        "--archive-months", type=int, default=2, help="how many of the oldest months to archive"
    )
    parser.add_argument("--sessions", type=int, default=200_000, help="expired sessions")
    parser.add_argument("--idle-requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=None, help="GUICHET_RETENTION_BATCH")
    parser.add_argument(
        "--verify-database",
        action="store_true",
        help="also run verify_history over the whole table after the archive (slow at 10M)",
    )
    parser.add_argument("--output", default=str(ROOT / "var" / "bench" / "purge.json"))
    add_keep_argument(parser)
    args = parser.parse_args(argv)
    if args.batch:
        os.environ["GUICHET_RETENTION_BATCH"] = str(args.batch)
    url = os.environ["DATABASE_URL"]
    require_benchmark_database(url, prefix=PREFIX)
    database_create_if_missing(url)
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        run(args)


def run(args: argparse.Namespace) -> None:
    django.setup()
    from django.core.management import call_command

    from tickets.models import TicketEvent

    call_command("migrate", verbosity=0)
    reset()
    started = time.perf_counter()
    figures = fill(
        rows=args.rows,
        per_ticket=args.events_per_ticket,
        months=args.months,
        sessions=args.sessions,
    )
    vacuum_analyze()
    fill_seconds = time.perf_counter() - started
    events = TicketEvent.objects.count()
    print(f"# filled {events:,} history rows in {fill_seconds:.0f} s ({figures})", flush=True)

    desk = Desk()
    idle = [desk.one() for _ in range(args.idle_requests)]
    purge = run_measured(["purge_retention"], desk)
    idle_after = [desk.one() for _ in range(args.idle_requests // 2)]
    month = _month_after(args.archive_months)
    out = Path(tempfile.mkdtemp(prefix="guichet-bench-archive-"))
    archive = run_measured(["archive_history", "--before", month, "--out", str(out)], desk)
    files = sorted(str(p) for p in out.glob("history-*.jsonl"))
    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_history", *[f"--archive={f}" for f in files]],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"},
        capture_output=True,
        text=True,
    )
    verify_db = None
    if args.verify_database:
        verify_db = subprocess.run(
            [sys.executable, "manage.py", "verify_history"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"},
            capture_output=True,
            text=True,
        )
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)  # the archive files (hundreds of MB at 10M rows)
    left = TicketEvent.objects.count()
    dropped = events - left
    redacted = _count(purge["output"], "outbox_redacted")
    sessions = _count(purge["output"], "sessions_deleted")
    idle_p95 = _p95(idle + idle_after)
    lines = [
        f"## Purge and archive at {events:,} history rows (load {os.getloadavg()[0]:.1f})",
        "",
        f"- fill: {fill_seconds:.0f} s ({events / max(fill_seconds, 1e-9):,.0f} rows/s in SQL)",
        f"- desk p95 idle: {idle_p95:.1f} ms (median {statistics.median(idle):.1f} ms,"
        f" {len(idle) + len(idle_after)} requests)",
        _measured_line(
            "purge_retention",
            purge,
            f"{redacted:,} outbox rows redacted + {sessions:,} sessions deleted",
            redacted + sessions,
            idle_p95,
        ),
        _measured_line(
            f"archive_history --before {month}",
            archive,
            f"{dropped:,} history rows exported and dropped",
            dropped,
            idle_p95,
        ),
        f"- verify_history --archive ({len(files)} files): "
        + ("passed" if verify.returncode == 0 else f"FAILED: {verify.stderr[-500:]}"),
    ]
    if verify_db is not None:
        lines.append(
            "- verify_history (the database): "
            + (verify_db.stdout.strip() if verify_db.returncode == 0 else "FAILED: "
               + verify_db.stderr[-500:])
        )  # fmt: skip
    text = "\n".join(lines)
    print(text, flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "rows": events,
                "fill": figures,
                "idle_ms": idle + idle_after,
                "purge": {k: v for k, v in purge.items() if k != "output"},
                "archive": {k: v for k, v in archive.items() if k != "output"},
                "verify_archive_ok": verify.returncode == 0,
                "markdown": text,
            }
        )
    )
    if verify.returncode != 0 or (verify_db is not None and verify_db.returncode != 0):
        raise SystemExit(1)


def _measured_line(name: str, result: dict[str, Any], what: str, rows: int, idle_p95: float) -> str:
    during = _p95(result["desk_ms"])
    return (
        f"- {name}: {result['seconds']:.1f} s, {what} = {rows / result['seconds']:,.0f} rows/s;"
        f" peak RSS {result['peak_rss_kib'] / 1024:.0f} MiB"
        f" ({_rss_over_time(result['rss_samples_kib'])}); desk p95 during {during:.1f} ms"
        f" = {during / idle_p95:.2f}x idle ({len(result['desk_ms'])} requests)"
    )


def _month_after(months: int) -> str:
    year, month = (int(p) for p in FIRST_MONTH.split("-")[:2])
    month += months
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return f"{year:04d}-{month:02d}"


def _count(output: str, name: str) -> int:
    for line in output.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split(":", 1)[1])
    return 0


if __name__ == "__main__":
    main()
