"""Desk benchmark: queues, search and the ticket page with 10k..1M tickets on PostgreSQL.

    .venv/bin/python benchmarks/desk.py --sizes 10000,100000,1000000

Loads a registry of --members members (default 1,000,000) with COPY, then grows the ticket
table to each size in turn (COPY again, with their history rows and e-mails), VACUUM ANALYZEs,
and measures in-process through Django's test client (full middleware, logged-in agent):
median and p95 server time and the SQL query count of each page, beside a floor view (one
keyset query, a plain template) measured in the same run. The database is
`guichet_bench` (DESK_BENCH_DATABASE_URL overrides, DATABASE_URL is ignored; a name not starting
guichet_bench is refused); it is emptied first and dropped at the end unless --keep. Prints
Markdown and writes var/bench/desk.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    dropped_unless_kept,
    require_benchmark_database,
    use_private_services,
)

PREFIX = "guichet_bench"
use_private_services(
    database_variable="DESK_BENCH_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
    settings="benchmarks.settings",
)

import django  # noqa: E402

# Common French surnames with roughly their share of the population (INSEE); the rest of the
# registry gets synthetic names, so a search for "Martin" finds ~0.4% of the rows, as in life.
COMMON_SURNAMES = [
    ("Martin", 0.0040), ("Bernard", 0.0020), ("Thomas", 0.0018), ("Petit", 0.0017),
    ("Robert", 0.0016), ("Richard", 0.0016), ("Durand", 0.0015), ("Dubois", 0.0015),
    ("Moreau", 0.0014), ("Laurent", 0.0014), ("Simon", 0.0013), ("Michel", 0.0013),
    ("Lefèvre", 0.0012), ("Leroy", 0.0012), ("Roux", 0.0011), ("David", 0.0011),
    ("Bertrand", 0.0011), ("Morel", 0.0010), ("Fournier", 0.0010), ("Girard", 0.0010),
    ("Bonnet", 0.0010), ("Dupont", 0.0010), ("Lambert", 0.0009), ("Fontaine", 0.0009),
    ("Rousseau", 0.0009), ("Vincent", 0.0009), ("Müller", 0.0005), ("Lefèbvre", 0.0005),
    ("Nguyễn", 0.0005), ("Le Gall", 0.0005), ("D'Angelo", 0.0003), ("Bérenger", 0.0003),
]  # fmt: skip
FIRST_NAMES = [
    "Zoë", "Jean", "Marie", "Pierre", "Anne", "Michel", "Françoise", "Philippe", "Nathalie",
    "Éric", "Hélène", "Loïc", "Gaëlle", "Jérôme", "Cécile", "Noël", "Agnès", "Benoît",
    "Lætitia", "Théo", "Inès", "Chloé", "Hugo", "Léa", "Raphaël", "Maëlys", "Joël", "Sébastien",
]  # fmt: skip
SYLLABLES = [
    "ba", "ber", "cha", "dou", "fa", "gau", "ger", "jo", "la", "le", "lou", "ma", "mon", "nau",
    "pa", "per", "que", "ra", "ri", "ro", "sau", "ta", "tel", "vau", "vi", "bé", "dé", "lé",
    "ré", "zu",
]  # fmt: skip
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
KINDS = [("REG", 0.55), ("REC", 0.25), ("EML", 0.08), ("CLO", 0.04), ("ACC", 0.08)]
CHANNELS = [("web", 0.9), ("phone", 0.05), ("letter", 0.03), ("email", 0.02)]
AGENTS = 20
# Takeover-signal levels (workflows/risk.py) with their score and one signal each: most requests
# carry none, some carry a signal, a few are high risk (the desk's `risk` filter is measured on
# each level).
RISK_LEVELS = [
    (("none", 0, "[]"), 0.85),
    (("some", 20, '[{"code": "email_differs_from_file", "weight": 20}]'), 0.12),
    (("high", 50, '[{"code": "email_on_file_for_other", "weight": 50}]'), 0.03),
]
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)", re.I)
HISTORY_DAYS = 730


def _reference(kind: str, n: int) -> str:
    """A unique reference per n: an odd multiplier is a bijection modulo 2**40."""
    value = (n * 0x9E3779B97 + 0x5DEECE66D) % (1 << 40)
    return kind + "-" + "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(7, -1, -1))


def _synthetic_surnames(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        parts = rng.choices(SYLLABLES, k=rng.choice((2, 3, 3, 4)))
        names.add("".join(parts).capitalize())
    return sorted(names)


class Registry:
    """The generated registry kept in memory to derive tickets from it."""

    def __init__(self, size: int, seed: int = 4) -> None:
        from members.names import normalise_name
        from members.nir import nir_key

        rng = random.Random(seed)
        tail = _synthetic_surnames(rng, 30000)
        common_share = sum(w for _n, w in COMMON_SURNAMES)
        names = [n for n, _w in COMMON_SURNAMES] + tail
        weights = [w for _n, w in COMMON_SURNAMES] + [(1 - common_share) / len(tail)] * len(tail)
        self.size = size
        self.last = rng.choices(names, weights=weights, k=size)
        self.first = rng.choices(FIRST_NAMES, k=size)
        self.keys = {name: normalise_name(name) for name in {*names, *FIRST_NAMES}}
        base = datetime.date(1940, 1, 1)
        self.birth = [
            base + datetime.timedelta(days=rng.randrange(0, 60 * 365)) for _ in range(size)
        ]
        self.nir = []
        for i in range(size):
            place = f"{rng.randrange(1, 96):02d}{rng.randrange(1000000):06d}"
            body = f"{rng.choice('12')}{self.birth[i]:%y%m}{place}"
            self.nir.append(f"{body}{nir_key(body):02d}")

    def number(self, i: int) -> str:
        return f"{100000000 + i}"

    def email(self, i: int) -> str:
        return f"{self.keys[self.first[i]].replace(' ', '')}.{i}@example.org"


def copy_rows(model: Any, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY rows into a model's table; columns left out get the field's Python default."""
    from django.db import connection

    explicit = set(columns)
    constants: list[tuple[str, Any]] = []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column in explicit:
            continue
        value = None if f.null and not f.has_default() else f.get_default()
        constants.append((f.column, f.get_db_prep_save(value, connection)))
    all_columns = columns + [c for c, _v in constants]
    tail = tuple(v for _c, v in constants)
    table = model._meta.db_table
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor
        column_sql = ", ".join(f'"{c}"' for c in all_columns)
        with raw.copy(f'COPY "{table}" ({column_sql}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row + tail)
                count += 1
    return count


def ensure_database() -> None:
    """Create the benchmark database if it does not exist."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        sys.exit("the desk benchmark needs PostgreSQL: a postgres:// *_BENCH_DATABASE_URL")
    params = {"host": db["HOST"] or None, "port": db["PORT"] or None, "user": db["USER"]}
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def reset(registry_size: int) -> Registry:
    """Empty the tables, create the staff, COPY the registry, its coverages and some accounts."""
    from django.contrib.auth.models import Group
    from django.db import connection

    from members.models import Account, Coverage, Member

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE members_member, members_coverage, members_account, tickets_ticket, "
            "tickets_ticketevent, workflows_outboxmessage, django_session RESTART IDENTITY CASCADE"
        )
    agents = Group.objects.get(name="agents")
    for n in range(AGENTS):
        staff = Account.objects.create_user(f"agent{n:02d}", "bench password 123", is_staff=True)
        staff.groups.add(agents)
    started = time.perf_counter()
    registry = Registry(registry_size)
    now = datetime.datetime.now(datetime.UTC)
    copy_rows(
        Member,
        [
            "member_number", "nir", "last_name", "first_name", "birth_date", "email",
            "last_name_key", "first_name_key", "created_at", "updated_at",
        ],
        (
            (
                registry.number(i), registry.nir[i], registry.last[i], registry.first[i],
                registry.birth[i], registry.email(i), registry.keys[registry.last[i]],
                registry.keys[registry.first[i]], now, now,
            )
            for i in range(registry_size)
        ),
    )  # fmt: skip
    kinds = (
        ["health_principal"] * 6 + ["retiree"] * 2 + ["provident_employee", "health_beneficiary"]
    )
    copy_rows(
        Coverage,
        ["member_id", "kind"],
        ((i + 1, kinds[i % len(kinds)]) for i in range(registry_size)),
    )
    # One member in five already has a client-area account.
    copy_rows(
        Account,
        ["password", "is_superuser", "username", "member_id", "email", "is_staff", "is_active",
         "status", "created_at"],
        (
            ("!", False, registry.number(i), i + 1, registry.email(i), False, True, "active", now)
            for i in range(0, registry_size, 5)
        ),
    )  # fmt: skip
    print(f"# registry of {registry_size:,} loaded in {time.perf_counter() - started:.0f} s")
    return registry


def _typo(name: str, rng: random.Random) -> str:
    position = rng.randrange(len(name))
    return name[:position] + rng.choice("aeiourst") + name[position + 1 :]


def _ticket_rows(
    registry: Registry, start: int, stop: int, agent_ids: list[int], rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    from members.names import normalise_name

    now = datetime.datetime.now(datetime.UTC)
    kinds, kind_w = zip(*KINDS, strict=True)
    channels, channel_w = zip(*CHANNELS, strict=True)
    risks, risk_w = zip(*RISK_LEVELS, strict=True)
    for n in range(start, stop):
        kind = rng.choices(kinds, kind_w)[0]
        created = now - datetime.timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
        i = rng.randrange(registry.size)
        roll = rng.random()
        last, first = registry.last[i], registry.first[i]
        member_id: int | None = i + 1
        number, match = registry.number(i), "match"
        if roll < 0.03:
            member_id, number, match = None, f"9{rng.randrange(10**8):08d}", "not_found"
        elif roll < 0.12:
            last, match = _typo(last, rng), "mismatch"
        state_roll = rng.random()
        if state_roll < 0.10:  # a 10% backlog: 100,000 open tickets at 1M
            state = "identity_mismatch" if match != "match" or rng.random() < 0.2 else "pending"
            decided_at = decided_by = None
            assignee = rng.choice(agent_ids) if rng.random() < 0.3 else None
        else:
            state = "confirmed" if match == "match" and rng.random() < 0.9 else "rejected"
            decided_at = created + datetime.timedelta(minutes=rng.randrange(10, 4000))
            decided_by = assignee = rng.choice(agent_ids)
        reason = "" if state != "rejected" else "identity_not_confirmed"
        risk_level, risk_score, risk_signals = rng.choices(risks, risk_w)[0]
        yield (
            _reference(kind, n), kind, rng.choices(channels, channel_w)[0], state, "fr",
            number, "", last, first, registry.birth[i], registry.email(i),
            normalise_name(last), registry.keys[first], member_id, match, assignee,
            created if assignee else None, decided_by, decided_at, reason, created, created,
            risk_level, risk_score, risk_signals,
        )  # fmt: skip


TICKET_COLUMNS = [
    "reference", "kind", "channel", "state", "language", "submitted_member_number",
    "submitted_nir", "submitted_last_name", "submitted_first_name", "submitted_birth_date",
    "submitted_email", "last_name_key", "first_name_key", "member_id", "match_result",
    "assignee_id", "claimed_at", "decided_by_id", "decided_at", "rejection_reason", "created_at",
    "updated_at", "risk_level", "risk_score", "risk_signals",
]  # fmt: skip


def grow_tickets(registry: Registry, start: int, stop: int) -> None:
    """COPY tickets start..stop, then one history row per event and one e-mail per ticket."""
    from django.db import connection

    from members.models import Account
    from tickets.models import Ticket, TicketEvent
    from workflows.models import OutboxMessage

    started = time.perf_counter()
    agent_ids = list(Account.objects.filter(is_staff=True).values_list("pk", flat=True))
    rng = random.Random(start)
    copy_rows(Ticket, TICKET_COLUMNS, _ticket_rows(registry, start, stop, agent_ids, rng))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, state, created_at, decided_at, decided_by_id, submitted_email "
            "FROM tickets_ticket WHERE id > %s ORDER BY id",
            [start],
        )
        tickets = cursor.fetchall()
    fake_hash = "0" * 64

    def events() -> Iterator[tuple[Any, ...]]:
        for pk, state, created, decided_at, decided_by, _email in tickets:
            yield (pk, "created", "", "pending", None, "member", "web", created, "", fake_hash)
            if state == "identity_mismatch":
                yield (pk, "transition", "pending", state, None, "system", "mismatch", created,
                       fake_hash, fake_hash)  # fmt: skip
            if decided_at is not None:
                yield (pk, "transition", "pending", state, decided_by, "staff", "", decided_at,
                       fake_hash, fake_hash)  # fmt: skip

    copy_rows(
        TicketEvent,
        ["ticket_id", "kind", "from_state", "to_state", "actor_id", "actor_kind", "reason",
         "created_at", "previous_hash", "row_hash"],
        events(),
    )  # fmt: skip
    copy_rows(
        OutboxMessage,
        ["ticket_id", "template", "recipient", "status", "attempts", "created_at", "sent_at",
         "next_attempt_at"],
        ((pk, "acknowledgment", email, "sent", 1, created, created, created)
         for pk, _s, created, _d, _b, email in tickets),
    )  # fmt: skip
    print(f"# tickets {start:,}..{stop:,} loaded in {time.perf_counter() - started:.0f} s")


def vacuum_analyze() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    started = time.perf_counter()
    with psycopg.connect(
        dbname=db["NAME"], host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"],
        password=db.get("PASSWORD") or None, autocommit=True,
    ) as conn:  # fmt: skip
        for table in (
            "members_member", "members_coverage", "members_account", "tickets_ticket",
            "tickets_ticketevent", "workflows_outboxmessage",
        ):  # fmt: skip
            conn.execute(f"VACUUM (ANALYZE) {table}")
    print(f"# vacuum analyze in {time.perf_counter() - started:.0f} s")


def _pages() -> dict[str, str]:
    """The pages to time, chosen from the data as an agent would reach them."""
    from tickets.models import Ticket

    mismatch = (
        Ticket.objects.filter(state="identity_mismatch", member__isnull=False)
        .order_by("created_at", "id")
        .values_list("reference", "submitted_member_number")
        .first()
    )
    if mismatch is None:
        raise SystemExit("no identity-mismatch ticket to open")
    reference, member_number = mismatch
    return {
        "floor (keyset + plain template)": "/bench/floor/",
        "default queue (All open, oldest first)": "/desk/",
        "identity mismatches": "/desk/?queue=mismatch",
        "search by name (“Martin”)": "/desk/?q=Martin",
        "search by member ID": f"/desk/?q={member_number}",
        # The `risk` filter on the open queue (ticket_open_risk_idx), one page per level.
        "queue, risk none": "/desk/?risk=none",
        "queue, risk some": "/desk/?risk=some",
        "queue, risk high": "/desk/?risk=high",
        # ... and on every ticket, open or decided (ticket_risky_created_idx).
        "all tickets, risk high": "/desk/?queue=all&risk=high",
        "ticket page (a mismatch)": f"/desk/tickets/{reference}/",
    }


def measure(pages: dict[str, str], repeat: int, warmup: int) -> dict[str, dict[str, float]]:
    """Time every page `repeat` times, round-robin, after `warmup` rounds; count queries once."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from members.models import Account
    from tests.second_factor import staff_login

    client = staff_login(Client(), Account.objects.get(username="agent00"))
    timings: dict[str, list[float]] = {name: [] for name in pages}
    queries: dict[str, int] = {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        # Transaction control (BEGIN/COMMIT around the session save) is not a query.
        queries[name] = sum(
            1 for query in captured.captured_queries if not TRANSACTION_CONTROL.match(query["sql"])
        )
    # Database time alone (the sum of each page's query times), in rounds of its own so that
    # capturing does not weigh on the timings above; less sensitive to a busy CPU than the total.
    db_times: dict[str, list[float]] = {name: [] for name in pages}
    for _round in range(max(5, repeat // 4)):
        for name, url in pages.items():
            with CaptureQueriesContext(connection) as captured:
                client.get(url)
            db_times[name].append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
    for round_ in range(warmup + repeat):
        for name, url in pages.items():
            started = time.perf_counter()
            client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            if round_ >= warmup:
                timings[name].append(elapsed)
    figures = {
        name: {
            "median_ms": statistics.median(values),
            "p95_ms": statistics.quantiles(values, n=20)[18],
            "queries": queries[name],
            "db_ms": statistics.median(db_times[name]),
        }
        for name, values in timings.items()
    }
    # The machine's load while measuring (other processes share the CPUs), for the record.
    figures["_load"] = {"median_ms": os.getloadavg()[0], "p95_ms": 0.0, "queries": 0}
    return figures


OTP_MIDDLEWARE = ("django_otp.middleware.OTPMiddleware", "core.middleware.SecondFactorMiddleware")


def second_factor_cost(url: str, repeat: int) -> dict[str, float]:
    """What the second-factor check adds to one desk page (docs/security.md §40): the same page
    with and without the two middlewares, rounds interleaved, same verified session."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from members.models import Account
    from tests.second_factor import staff_login

    account = Account.objects.get(username="agent00")
    with_check = staff_login(Client(), account)
    without = [m for m in settings.MIDDLEWARE if m not in OTP_MIDDLEWARE]
    with override_settings(MIDDLEWARE=without):
        without_check = staff_login(Client(), account)
        without_check.get(url)  # loads its middleware chain now, without the two
    with_check.get(url)

    def queries(client: Client) -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        return sum(1 for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"]))

    times: dict[str, list[float]] = {"with": [], "without": []}
    for _round in range(repeat):
        for name, client in (("with", with_check), ("without", without_check)):
            started = time.perf_counter()
            client.get(url)
            times[name].append((time.perf_counter() - started) * 1000)
    median_with, median_without = (statistics.median(times[k]) for k in ("with", "without"))
    return {
        "queries_added": queries(with_check) - queries(without_check),
        "median_with_ms": median_with,
        "median_without_ms": median_without,
        "median_added_ms": median_with - median_without,
    }


def second_factor_report(cost: dict[str, float]) -> str:
    return (
        "\n| second-factor check on the queue | queries added | median with | median without "
        "| median added |\n|---|---:|---:|---:|---:|\n"
        f"| `/desk/` | {cost['queries_added']:.0f} | {cost['median_with_ms']:.2f} ms "
        f"| {cost['median_without_ms']:.2f} ms | {cost['median_added_ms']:.2f} ms |"
    )


def report(results: dict[int, dict[str, dict[str, float]]], members: int) -> str:
    """Markdown: one table per size, then the targets."""
    lines: list[str] = []
    sizes = sorted(results)
    floor_name = next(name for name in results[sizes[0]] if name.startswith("floor"))
    queue_names = [
        n
        for n in results[sizes[0]]
        if n != floor_name and "ticket page" not in n and not n.startswith("_")
    ]
    for size in sizes:
        floor = results[size][floor_name]["median_ms"]
        lines += [
            f"\n**{size:,} tickets** ({members:,} registry members; load average "
            f"{results[size]['_load']['median_ms']:.1f} on {os.cpu_count()} CPUs)\n",
            "| page | median ms | p95 ms | queries | x floor | SQL ms (median) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, figures in results[size].items():
            if name.startswith("_"):
                continue
            lines.append(
                f"| {name} | {figures['median_ms']:.1f} | {figures['p95_ms']:.1f} | "
                f"{figures['queries']} | {figures['median_ms'] / floor:.2f} | "
                f"{figures.get('db_ms', 0):.1f} |"
            )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        lines += [
            f"\n**Growth {large:,} / {small:,}** (median)\n",
            "| page | ratio |",
            "|---|---:|",
        ]
        for name in results[small]:
            if name.startswith("_"):
                continue
            ratio = results[large][name]["median_ms"] / results[small][name]["median_ms"]
            lines.append(f"| {name} | {ratio:.2f} |")
    checks = []
    for size in sizes:
        floor = results[size][floor_name]["median_ms"]
        for name in queue_names:
            ratio = results[size][name]["median_ms"] / floor
            checks.append((f"{name} ≤ 2x floor at {size:,}", ratio <= 2, f"{ratio:.2f}x"))
        for name, figures in results[size].items():
            if name.startswith("_"):
                continue
            # 10 for the page, plus the session's second-factor device (docs/security.md §40);
            # a page showing a member's file also appends its access journal row (the budget of
            # tests/agentdesk/test_desk_query_counts.py).
            budget = 12 if "ticket page" in name else 11
            checks.append(
                (
                    f"{name} ≤ {budget} queries at {size:,}",
                    figures["queries"] <= budget,
                    figures["queries"],
                )
            )
    if len(sizes) > 1:
        for name in queue_names:
            ratio = results[sizes[-1]][name]["median_ms"] / results[sizes[0]][name]["median_ms"]
            checks.append(
                (f"{name}: {sizes[-1]:,} ≤ 1.3x {sizes[0]:,}", ratio <= 1.3, f"{ratio:.2f}")
            )
    search = next(n for n in results[sizes[-1]] if n.startswith("search by name"))
    figure = results[sizes[-1]][search]["median_ms"]
    checks.append((f"name search ≤ 25 ms at {sizes[-1]:,}", figure <= 25, f"{figure:.1f} ms"))
    lines += ["\n**Targets**\n", "| target | met | figure |", "|---|---|---:|"]
    lines += [f"| {label} | {'yes' if ok else 'NO'} | {value} |" for label, ok, value in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench" / "desk.json"))
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure the tickets already loaded (e.g. again on a quieter machine), load nothing",
    )
    add_keep_argument(parser)
    args = parser.parse_args(argv)
    url = os.environ["DATABASE_URL"]
    require_benchmark_database(url, prefix=PREFIX)
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself (its database is dropped afterwards unless --keep)."""
    sizes = sorted(int(s) for s in args.sizes.split(","))

    django.setup()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if args.measure_only:
        from tickets.models import Ticket

        size = Ticket.objects.count()
        results = {size: measure(_pages(), args.repeat, args.warmup)}
        cost = second_factor_cost("/desk/", args.repeat * 5)
        text = report(results, args.members) + second_factor_report(cost)
        print(text, flush=True)
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(
            json.dumps({"sizes": results, "second_factor": cost, "markdown": text}, indent=2)
        )
        return
    registry = reset(args.members)
    results: dict[int, dict[str, dict[str, float]]] = {}
    loaded = 0
    for size in sizes:
        grow_tickets(registry, loaded, size)
        loaded = size
        vacuum_analyze()
        results[size] = measure(_pages(), args.repeat, args.warmup)
        print(report({size: results[size]}, args.members), flush=True)
    cost = second_factor_cost("/desk/", args.repeat * 5)
    text = report(results, args.members) + second_factor_report(cost)
    print("\n# all sizes\n" + text)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({"sizes": results, "second_factor": cost, "markdown": text}, indent=2)
    )


if __name__ == "__main__":
    main()
