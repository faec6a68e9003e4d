"""The registry upsert over real HTTP: gunicorn, a token from POST /api/v1/token, N clients.

Used by benchmarks/api.py (which sets the environment: its own database; gunicorn gets Redis db
13, API_BENCH_REDIS_URL overrides, emptied before and after). What a
registry feed does in production: several batches in flight at once, each one transaction, each
answered with its per-row rejections. The clients are threads in this process (urllib, bodies
encoded beforehand), on the same machine as gunicorn and PostgreSQL: the figure is the
machine's, clients included.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.series import insert_series

ROOT = Path(__file__).resolve().parent.parent
BIRTH_DATE = "1970-05-17"


# The passes of a registry benchmark: the members are new, then each one's last name and
# e-mail change (an UPDATE and a re-check per member), then the same rows come again (nothing
# to write: a feed that re-sends what it sent).
PASSES = ("insert", "update", "repeat")


def registry_batches(
    first: int, members: int, batch: int, *, changed: bool = False
) -> list[list[dict[str, Any]]]:
    """`members` members from member number `first` on, `batch` per list; `changed`: the same
    members with another last name and e-mail."""
    last_name, mailbox = ("Lefèvre-Durand", "n") if changed else ("Lefèvre", "m")
    return [
        [
            {
                "member_number": f"{first + n}",
                "last_name": last_name,
                "first_name": "Zoë",
                "birth_date": BIRTH_DATE,
                "email": f"{mailbox}{first + n}@example.org",
                "coverages": ["health_principal"],
            }
            for n in range(start, min(start + batch, members))
        ]
        for start in range(0, members, batch)
    ]


def seed_registry_base(count: int, first: int, *, tickets: int = 0) -> None:
    """`count` members (one coverage each) from member number `first`, and `tickets` requests
    over them, in SQL, then ANALYZE.

    The timed batches then write into a registry of production size: the unique index on
    member_number and the name indexes are as deep as they will be, and the planner's
    statistics are a registry's, not an empty table's (which picks sequential scans).
    """
    import psycopg
    from django.db import connection

    from members.models import Member

    if count <= 0:
        return
    started = time.perf_counter()
    explicit = {
        "member_number": f"({first} + g)::text",
        "nir": "''",
        "last_name": "'Base' || (g %% 9973)",
        "first_name": "'Jo'",
        "last_name_key": "'base' || (g %% 9973)",
        "first_name_key": "'jo'",
        "birth_date": "date '1950-01-01' + (g %% 20000)",
        "email": "'b' || g || '@example.org'",
        "created_at": "now()",
        "updated_at": "now()",
    }
    insert_series(Member, explicit, count)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO members_coverage (member_id, kind) "
            "SELECT id, 'health_principal' FROM members_member"
        )
    _seed_tickets(tickets, first, count)
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table in ("members_member", "members_coverage", "tickets_ticket"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    print(f"seeded a registry of {count:,} members and {tickets:,} tickets in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip


def _seed_tickets(count: int, first: int, members: int) -> None:
    """`count` tickets over the base members, one in three still open: the re-check's read of
    open requests then runs over a production-sized tickets table and its indexes."""

    from tickets.models import Ticket

    if count <= 0:
        return
    explicit = {
        "reference": "'RGB-' || lpad(g::text, 8, '0')",
        "kind": "'REG'",
        "state": "(ARRAY['pending','confirmed','rejected'])[1 + g %% 3]",
        "member_id": "(SELECT min(id) FROM members_member) + g %% %s",
        "submitted_member_number": f"({first} + g %% %s)::text",
        "submitted_last_name": "'Base'",
        "submitted_first_name": "'Jo'",
        "submitted_email": "'x@example.org'",
        "last_name_key": "'base'",
        "first_name_key": "'jo'",
        "match_result": "'match'",
        "created_at": "now() - interval '30 days'",
        "updated_at": "now() - interval '30 days'",
    }
    insert_series(Ticket, explicit, count, explicit_params=[members, members])


def _token(base: str, client_id: str, secret: str) -> str:
    data = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    ).encode()
    request = urllib.request.Request(f"{base}/api/v1/token", data=data, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as raw:  # noqa: S310 (loopback)
        token: str = json.loads(raw.read())["access_token"]
    return token


def _post(url: str, token: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as raw:  # noqa: S310
            answer = json.loads(raw.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(f"registry batch answered {error.code}: {error.read()[:300]!r}") from None
    if answer["rejected"]:
        raise SystemExit(f"registry batch rejected rows: {answer['rejected'][:3]}")


def _post_all(base: str, token: str, bodies: list[bytes], clients: int) -> float:
    """Post every body, `clients` at a time (each thread takes the next); the wall time."""
    url = f"{base}/api/v1/registry/members"
    pending = iter(bodies)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def client() -> None:
        while not failures:
            with lock:
                body = next(pending, None)
            if body is None:
                return
            try:
                _post(url, token, body)
            except BaseException as exc:  # re-raised by the main thread
                failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return elapsed


@contextmanager
def served(workers: int) -> Iterator[str]:
    """gunicorn (`workers` x 1 thread, production settings over plain HTTP); its base URL."""
    import redis

    from tests.faults.served import Gunicorn

    # Production settings refuse to start without Redis (shared limits, the broker) and SMTP.
    redis_url = os.environ.get("API_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "desk.settings_loopback",
        "REDIS_URL": redis_url,
        "EMAIL_URL": "smtp://127.0.0.1:9",  # no worker runs, and a registry write sends nothing
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-not-a-secret-" + "x" * 40),
        "GUICHET_API_CALLS_PER_MINUTE": "100000000",
        "GUICHET_VAR_DIR": str(ROOT / "var" / "bench" / "api-registry-var"),
        "LOG_LEVEL": "WARNING",
    }
    web = Gunicorn(
        env=env, log_path=ROOT / "var" / "bench" / "api-registry-gunicorn.log", workers=workers
    ).start(timeout=60)
    try:
        yield web.url
    finally:
        web.stop()
        redis.Redis.from_url(redis_url).flushdb()


def bench_registry_http(
    *, first: int, members: int, batch: int, clients: list[int], workers: int
) -> dict[str, float]:
    """For each client count: `members` new members, then changed, then repeated (PASSES)."""
    from api.clients import client_create

    credentials = client_create(
        name="bench-registry-http", scopes=["registry:write"], calls_per_minute=10**9
    )
    figures: dict[str, float] = {}
    with served(workers) as base:
        token = _token(base, credentials.client_id, credentials.client_secret)
        # Warm every worker (imports, connections, caches) outside the timed passes: small
        # batches of members numbered below `first`, 2 per worker, all in flight at once.
        warmup = registry_batches(first - 2 * workers * 10, 2 * workers * 10, 10)
        _post_all(base, token, [json.dumps({"members": b}).encode() for b in warmup], workers)
        for round_index, count in enumerate(clients):
            start = first + round_index * members
            bodies = {
                changed: [
                    json.dumps({"members": items}).encode()
                    for items in registry_batches(start, members, batch, changed=changed)
                ]
                for changed in (False, True)
            }
            for label in PASSES:
                elapsed = _post_all(base, token, bodies[label != "insert"], count)
                rate = members / elapsed
                figures[f"{label} x{count}"] = rate
                print(f"registry over HTTP, {count} client(s), gunicorn {workers}x1, {label}: "
                      f"{members} rows in {elapsed:.2f} s = {rate:,.0f} rows/s "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    return figures
