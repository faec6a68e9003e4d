"""Equal work per request class (docs/security.md §2): the registration form, on PostgreSQL.

    .venv/bin/python benchmarks/equal_work.py --per-class 120

Recreates the dedicated database `guichet_equal_work` (EQUAL_WORK_DATABASE_URL overrides; it
is DROPPED first), uses Redis db 11 for the cache and broker (EQUAL_WORK_REDIS_URL overrides;
emptied before and after), raises the abuse limits, and POSTs /register/ through Django's test
client (full middleware, production hasher: Argon2id) in randomly interleaved order, five
classes:

  exact        a registry member, names exactly as in the registry
  typo         the same with one letter added to the last name
  unknown      a member ID the registry does not hold
  beneficiary  a registry member whose only coverage gives no account of their own
  account      a member who already has an account

Each request uses a member of its own (no repeat-request attachment). Prints per class: median
and p95 server time, SQL queries per request, password-hasher calls per request, outbox rows
per request, and the largest |Δmedian| against `exact`. docs/security.md's target (ours): < 5 ms.
Not a test: run it on a quiet machine; the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import random
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

PREFIX = "guichet_equal_work"
use_private_services(
    database_variable="EQUAL_WORK_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
    redis_variable="EQUAL_WORK_REDIS_URL",
    redis_default="redis://127.0.0.1:6379/11",
    settings="benchmarks.settings",
)

import django  # noqa: E402

CLASSES = ("exact", "typo", "unknown", "beneficiary", "account")


def seed(per_class: int) -> dict[str, list[dict[str, str]]]:
    """`per_class` distinct identities per class, as the form would be filled in."""
    from members.models import Account, Coverage, CoverageKind, Member

    forms: dict[str, list[dict[str, str]]] = {c: [] for c in CLASSES}
    birth = datetime.date(1970, 5, 17)
    number = 300000000
    for cls in CLASSES:
        for n in range(per_class):
            number += 1
            member_number = f"{number}"
            if cls != "unknown":
                member = Member.objects.create(
                    member_number=member_number,
                    last_name="Lefèvre",
                    first_name="Zoë",
                    birth_date=birth,
                    email=f"registry{number}@example.org",
                )
                kind = (
                    CoverageKind.HEALTH_BENEFICIARY
                    if cls == "beneficiary"
                    else CoverageKind.HEALTH_PRINCIPAL
                )
                Coverage.objects.create(member=member, kind=kind)
                if cls == "account":
                    account = Account(username=member_number, member=member)
                    account.set_unusable_password()
                    account.save()
            forms[cls].append(
                {
                    "member_number": member_number,
                    "nir": "",
                    "last_name": "Lefèvree" if cls == "typo" else "Lefèvre",
                    "first_name": "Zoë",
                    "birth_date": birth.strftime("%d/%m/%Y"),
                    "email": f"typed{number}@example.net",
                    "secret_question": "first_pet",
                    "secret_answer": f"Caramel {n}",
                    "accept_terms": "on",
                }
            )
    return forms


class HasherCalls:
    """Counts encode/verify calls on every configured password hasher."""

    def __init__(self) -> None:
        from django.contrib.auth.hashers import get_hashers

        self.count = 0
        for hasher in get_hashers():
            for name in ("encode", "verify"):
                original = getattr(hasher, name)

                def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                    self.count += 1
                    return _original(*args, **kwargs)

                setattr(hasher, name, counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=10)
    add_keep_argument(parser)
    args = parser.parse_args()
    with dropped_unless_kept(os.environ["DATABASE_URL"], keep=args.keep, prefix=PREFIX):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself (its database is dropped afterwards unless --keep)."""
    load_before = os.getloadavg()

    database_recreate(os.environ["DATABASE_URL"], prefix=PREFIX)
    django.setup()
    import redis
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from workflows.models import OutboxMessage
    from workflows.services.submissions import form_token_new

    setup_test_environment()
    for knob in (
        "GUICHET_SUBMISSIONS_PER_IP_PER_HOUR",
        "GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR",
        "GUICHET_EMAILS_PER_ADDRESS_PER_HOUR",
    ):
        setattr(settings, knob, 10**9)
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    broker.flushdb()

    forms = seed(args.per_class + args.warmup)
    hashers = HasherCalls()
    client = Client()
    order = [(cls, i) for cls in CLASSES for i in range(args.warmup, args.warmup + args.per_class)]
    random.Random(2).shuffle(order)
    warm = [(cls, i) for cls in CLASSES for i in range(args.warmup)]

    times: dict[str, list[float]] = collections.defaultdict(list)
    queries: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    hashes: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    outbox: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    for phase, batch in (("warmup", warm), ("measure", order)):
        for cls, index in batch:
            data = {**forms[cls][index], "form_token": form_token_new()}
            before_outbox = OutboxMessage.objects.count()
            hashers.count = 0
            connection.queries_log.clear()  # a full log (9000) would make the count read 0
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.post("/register/", data)
                elapsed = time.perf_counter() - started
            if phase == "warmup":
                continue
            statuses[(cls, response.status_code)] += 1
            times[cls].append(elapsed)
            queries[cls][len(captured)] += 1
            hashes[cls][hashers.count] += 1
            outbox[cls][OutboxMessage.objects.count() - before_outbox] += 1
    broker.flushdb()

    def p95(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[int(0.95 * (len(ordered) - 1))]

    base = statistics.median(times["exact"])
    rows = []
    for cls in CLASSES:
        rows.append(
            {
                "class": cls,
                "n": len(times[cls]),
                "median_ms": round(statistics.median(times[cls]) * 1000, 1),
                "p95_ms": round(p95(times[cls]) * 1000, 1),
                "delta_median_ms": round((statistics.median(times[cls]) - base) * 1000, 1),
                "queries": dict(queries[cls]),
                "hasher_calls": dict(hashes[cls]),
                "outbox_rows": dict(outbox[cls]),
                "statuses": {s: c for (k, s), c in statuses.items() if k == cls},
            }
        )
    result = {
        "rows": rows,
        "max_abs_delta_median_ms": max(abs(r["delta_median_ms"]) for r in rows),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "hashers": settings.PASSWORD_HASHERS[0],
    }
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "equal_work.json").write_text(json.dumps(result, indent=2))
    print(
        f"POST /register/, {args.per_class} per class interleaved ({len(order)} requests), "
        f"{result['hashers']}; load average {load_before[0]:.2f} → {result['loadavg_after'][0]:.2f}"
    )
    print("\n| Class | n | median ms | p95 ms | Δmedian ms | SQL queries | hashers | outbox |")
    print("|---|---:|---:|---:|---:|---|---|---|")
    for r in rows:
        print(
            f"| {r['class']} | {r['n']} | {r['median_ms']} | {r['p95_ms']} | "
            f"{r['delta_median_ms']:+} | {r['queries']} | {r['hasher_calls']} | "
            f"{r['outbox_rows']} |"
        )
    print(f"\nmax |Δmedian| vs exact: {result['max_abs_delta_median_ms']} ms (ours: < 5 ms)")


if __name__ == "__main__":
    main()
