"""`manage.py import_members` over a 1M-member registry with open requests, on PostgreSQL.

    .venv/bin/python benchmarks/import_members.py --members 1000000 --code /path/to/checkout

Recreates the dedicated database `guichet_import_bench` (IMPORT_BENCH_DATABASE_URL overrides; it
is DROPPED first and at the end unless --keep), migrates it with the code of --code (default:
this checkout, so the same script measures another branch, e.g. main, before a change), loads a
registry of --members members (one coverage each) and open requests for --ticket-fraction of
them (a third typed with another first name, so in identity_mismatch; the rest pending, typed as
registered) by COPY, then `VACUUM ANALYZE`. It writes the insurer's CSV of every member with
--changed-fraction of the rows changed (half a new first name — the one the mismatched requests
typed —, half one more coverage), and times `manage.py import_members` on it in a subprocess
running that code (wall clock, the whole command: reading, checks, upserts and, where the code
has it, the re-check of open requests). Then the same file a second time (nothing changes).
Prints the figures; not a test.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    database_create_if_missing,
    database_drop,
    dropped_unless_kept,
    require_benchmark_database,
    use_private_services,
)

PREFIX = "guichet_import_bench"
LAST = ["Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau"]
FIRST = ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Manon", "Lucas", "Inès", "Zoë"]
NEW_FIRST = "Renée"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--ticket-fraction", type=float, default=0.03)
    parser.add_argument("--changed-fraction", type=float, default=0.2)
    parser.add_argument("--code", default=str(HERE), help="checkout whose code is measured")
    parser.add_argument(
        "--passes", type=int, default=2, help="1: the changed file only; 2: then the same again"
    )
    add_keep_argument(parser)
    return parser.parse_args()


def _member(i: int) -> tuple[str, str, str, datetime.date, str]:
    birth = datetime.date(1940, 1, 1) + datetime.timedelta(days=(i * 37) % 25000)
    return (f"{100000000 + i}", LAST[i % len(LAST)], FIRST[i % len(FIRST)], birth, f"m{i}@ex.org")


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
    count = 0
    with connection.cursor() as cursor:
        column_sql = ", ".join(f'"{c}"' for c in all_columns)
        table = model._meta.db_table
        with cursor.cursor.copy(f'COPY "{table}" ({column_sql}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row + tail)
                count += 1
    return count


def seed(members: int, ticket_fraction: float) -> tuple[int, int]:
    """The registry and the open requests; returns (pending, mismatched) counts."""
    from django.db import connection
    from django.utils import timezone

    from members.models import Coverage, Member
    from members.names import normalise_name
    from tickets.models import Ticket

    now = timezone.now()

    def member_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(members):
            number, last, first, birth, email = _member(i)
            yield (
                i + 1,
                number,
                last,
                first,
                birth,
                email,
                normalise_name(last),
                normalise_name(first),
                now,
                now,
            )

    copy_rows(
        Member,
        [
            "id",
            "member_number",
            "last_name",
            "first_name",
            "birth_date",
            "email",
            "last_name_key",
            "first_name_key",
            "created_at",
            "updated_at",
        ],
        member_rows(),
    )
    copy_rows(
        Coverage, ["member_id", "kind"], ((i + 1, "health_principal") for i in range(members))
    )
    rng = random.Random(13)
    counts = [0, 0]

    def ticket_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(members):
            if rng.random() >= ticket_fraction:
                continue
            number, last, first, birth, email = _member(i)
            mismatch = rng.random() < 1 / 3
            typed = NEW_FIRST if mismatch else first
            counts[mismatch] += 1
            yield (
                f"REG-{i:08d}",
                "REG",
                "identity_mismatch" if mismatch else "pending",
                number,
                last,
                typed,
                birth,
                email,
                normalise_name(last),
                normalise_name(typed),
                i + 1,
                "mismatch" if mismatch else "match",
                now,
                now,
            )

    copy_rows(
        Ticket,
        [
            "reference",
            "kind",
            "state",
            "submitted_member_number",
            "submitted_last_name",
            "submitted_first_name",
            "submitted_birth_date",
            "submitted_email",
            "last_name_key",
            "first_name_key",
            "member_id",
            "match_result",
            "created_at",
            "updated_at",
        ],
        ticket_rows(),
    )
    with connection.cursor() as cursor:
        sequence = "pg_get_serial_sequence('members_member', 'id')"
        cursor.execute(f"SELECT setval({sequence}, %s)", [members])
    connection.close()
    with connection.cursor() as cursor:
        for table in ("members_member", "members_coverage", "tickets_ticket"):
            cursor.execute(f'VACUUM ANALYZE "{table}"')
    return counts[0], counts[1]


def write_csv(path: Path, members: int, changed_fraction: float) -> int:
    rng = random.Random(14)
    changed = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("member_number,nir,last_name,first_name,birth_date,email,coverages\n")
        for i in range(members):
            number, last, first, birth, email = _member(i)
            coverages = "health_principal"
            draw = rng.random()
            if draw < changed_fraction / 2:
                first = NEW_FIRST
                changed += 1
            elif draw < changed_fraction:
                coverages = "health_principal;provident_employee"
                changed += 1
            out.write(f"{number},,{last},{first},{birth.isoformat()},{email},{coverages}\n")
    return changed


def _manage(code: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py` of the checkout measured (its code first on the path)."""
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=code,
        env={**os.environ, "PYTHONPATH": code},
        capture_output=True,
        text=True,
        check=False,
    )


def time_import(code: str, path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = _manage(code, "import_members", str(path))
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import_members failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout.strip()


def main() -> None:
    args = _args()
    code = str(Path(args.code).resolve())
    url = use_private_services(
        database_variable="IMPORT_BENCH_DATABASE_URL",
        database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
        settings="benchmarks.settings",
    )
    # database_drop only warns about a foreign name; the migrate and COPY below would write.
    require_benchmark_database(url, prefix=PREFIX)
    with dropped_unless_kept(url, keep=args.keep, prefix=PREFIX):
        database_drop(url, prefix=PREFIX)
        database_create_if_missing(url)
        migrated = _manage(code, "migrate", "--no-input", "-v", "0")
        if migrated.returncode != 0:
            raise SystemExit(f"migrate failed: {migrated.stderr[-2000:]}")
        # The measured checkout's models (and migrations' schema) in this process too.
        # (From its directory too: loading the Celery app puts the working directory first.)
        os.chdir(code)
        sys.path[:] = [code, *(p for p in sys.path if p not in ("", str(HERE)))]
        for name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
            del sys.modules[name]
        import django

        django.setup()
        started = time.perf_counter()
        pending, mismatched = seed(args.members, args.ticket_fraction)
        print(
            f"code {code}: seeded {args.members:,} members, {pending:,} pending and "
            f"{mismatched:,} mismatched open requests in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "registry.csv"
            changed = write_csv(path, args.members, args.changed_fraction)
            print(f"CSV: {args.members:,} rows, {changed:,} changed", flush=True)
            for label in ("changed rows", "the same file again")[: args.passes]:
                load = os.getloadavg()[0]
                elapsed, out = time_import(code, path)
                print(
                    f"import_members, {label}: {elapsed:.1f} s = "
                    f"{args.members / elapsed:,.0f} rows/s (load {load:.1f}) | {out}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
