"""Sustained load on loopback (docs/security.md §33): gunicorn, PostgreSQL, Redis, Celery, SMTP.

    .venv/bin/python benchmarks/load.py --minutes 10 --rate 2 --agents 3

Recreates the dedicated database `guichet_load` (LOAD_DATABASE_URL overrides; it is DROPPED
first), empties Redis db 9 (LOAD_REDIS_URL overrides), seeds a registry and staff, then starts
gunicorn (2 workers, production settings over plain HTTP: desk.settings_loopback), one real Celery
worker (prefork, --concurrency=2, embedded beat) and an aiosmtpd sink in this process. For
--minutes it submits public forms at a fixed --rate (open loop: a request is started every
1/rate s whatever the previous ones do) — 60% /register/, 25% /recover/, 15% /support/; of the
identities 70% exact, 15% with a name typo, 15% unknown IDs — each as a browser does (GET the
page, POST it, follow to the status page), while --agents simulated agents log in at
/desk/login/ and loop: open the queue, open a ticket, confirm it (or reject when confirm is not
offered), pausing --think seconds. Abuse limits are raised for the run (one client IP).

Prints p50/p95/p99 per endpoint, 5xx count, submitted vs stored, outbox lag, decision→SMTP
latency (ticket.decided_at → the sink's receive time), duplicate credentials e-mails, peak DB
connections, Redis memory, Celery queue depth and the machine's load average; writes
var/bench/load.json. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import email
import email.policy
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
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

PREFIX = "guichet_load"
use_private_services(
    database_variable="LOAD_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
    redis_variable="LOAD_REDIS_URL",
    redis_default="redis://127.0.0.1:6379/9",
    settings="desk.settings_loopback",
    secret_key_label="load",  # noqa: S106  (names a throwaway key; not a secret)
)

import django  # noqa: E402

AGENT_PASSWORD = "load agent password 123"  # noqa: S105  (a benchmark account)
REASON = re.compile(r'<select name="reason"[^>]*>.*?<option value="([a-z_]+)"', re.S)
REF = re.compile(r"/desk/tickets/([A-Z]{3}-[0-9A-HJKMNP-TV-Z]{8})/")
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Nguyễn", "O'Brien", "Lefèvre", "Müller", "Roux"]
FIRST_NAMES = ["Zoë", "Łukasz", "Amélie", "Noël", "Inès", "Loïc", "Hélène", "Théo"]
LIMITS_RAISED = {
    "GUICHET_SUBMISSIONS_PER_IP_PER_HOUR": "100000000",
    "GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR": "100000000",
    "GUICHET_EMAILS_PER_ADDRESS_PER_HOUR": "100000000",
    "GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE": "100000000",
    "GUICHET_LOGIN_FAILURES_PER_IP_PER_HOUR": "100000000",
    # The agents log in once: their second factor stays fresh for the whole run (no step-up page).
    "GUICHET_STEP_UP_SECONDS": "86400",
}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (values need not be sorted)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


# --- services ------------------------------------------------------------------------------------


def seed(members: int, agents: int) -> list[dict[str, Any]]:
    """A registry of `members` members (each with a health coverage) and `agents` agents."""
    from django.contrib.auth.models import Group

    from members.models import Account, Coverage, CoverageKind, Member
    from tests.second_factor import ensure_device

    rng = random.Random(7)
    rows = []
    for n in range(members):
        rows.append(
            Member(
                member_number=f"8{n:08d}",
                last_name=rng.choice(LAST_NAMES),
                first_name=rng.choice(FIRST_NAMES),
                birth_date=datetime.date(1940, 1, 1)
                + datetime.timedelta(days=rng.randrange(25000)),
                email=f"registry{n}@example.org",
            )
        )
    Member.objects.bulk_create(rows, batch_size=2000)
    Coverage.objects.bulk_create(
        [Coverage(member=m, kind=CoverageKind.HEALTH_PRINCIPAL) for m in Member.objects.all()],
        batch_size=2000,
    )
    group = Group.objects.get(name="agents")
    for n in range(agents):
        account = Account(username=f"load-agent-{n}", is_staff=True)
        account.set_password(AGENT_PASSWORD)
        account.save()
        account.groups.add(group)
        ensure_device(account)  # the tests' known authenticator key (tests/second_factor.py)
    return [
        {
            "member_number": m.member_number,
            "last_name": m.last_name,
            "first_name": m.first_name,
            "birth_date": m.birth_date.strftime("%d/%m/%Y"),
        }
        for m in Member.objects.order_by("?")[: min(members, 100000)]
    ]


class Sink:
    """aiosmtpd on loopback: receive time and headers of every accepted message."""

    def __init__(self) -> None:
        from tests.integration.harness import free_port

        self.port = free_port()
        self.received: list[tuple[float, str, str]] = []  # (epoch, message id, template)
        self.lock = threading.Lock()
        self.controller: Any = None

    def start(self) -> Sink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                now = time.time()
                headers = email.message_from_bytes(
                    envelope.original_content or envelope.content, policy=email.policy.default
                )
                with sink.lock:
                    sink.received.append((now, str(headers.get("X-Guichet-Message", "")), ""))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- the load ------------------------------------------------------------------------------------


class Recorder:
    """Latency and status per endpoint, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: collections.Counter[tuple[str, int]] = collections.Counter()
        self.errors: list[str] = []

    def timed(self, label: str, call: Any) -> Any:
        started = time.perf_counter()
        try:
            response = call()
        except Exception as exc:  # connection reset, timeout: counted as an error
            with self.lock:
                self.statuses[(label, 599)] += 1
                self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.samples[label].append(elapsed)
            self.statuses[(label, response.status)] += 1
        return response


def identity(pool: list[dict[str, Any]], rng: random.Random) -> tuple[dict[str, str], str]:
    """70% exact, 15% a name typo, 15% an unknown ID."""
    person = dict(rng.choice(pool))
    roll = rng.random()
    if roll < 0.15:
        person["last_name"] = person["last_name"] + "x"
        return person, "typo"
    if roll < 0.30:
        person["member_number"] = f"9{rng.randrange(10**8):08d}"
        return person, "unknown"
    return person, "exact"


def submit_one(base: str, recorder: Recorder, pool: list[dict[str, Any]], seq: int) -> bool:
    from tests.integration.harness import HttpClient

    rng = random.Random(seq)
    client = HttpClient(base, timeout=60)
    person, _ = identity(pool, rng)
    roll = rng.random()
    address = f"load{seq}@example.net"
    if roll < 0.60:
        path = "/register/"
        data = {
            **person,
            "nir": "",
            "email": address,
            "secret_question": "first_pet",
            "secret_answer": f"Caramel {seq}",
            "accept_terms": "on",
        }
    elif roll < 0.85:
        path = "/recover/"
        data = {**person, "nir": "", "email": address}
    else:
        path = "/support/"
        data = {
            **person,
            "nir": "",
            "email": address,
            "topic": "codes_never_received",
            "message": "Je n'ai rien reçu.",
        }
    page = recorder.timed(f"GET {path}", lambda: client.get(path, follow=False))
    if page is None or page.status != 200:
        return False
    form = page.form(path)
    values = {**form.fields, **data}
    posted = recorder.timed(
        f"POST {path}", lambda: client.post(path, values, referer=page.url, follow=False)
    )
    if posted is None or posted.status != 302:
        return False
    recorder.timed("GET /requests/<ref>/", lambda: client.get(posted.location, follow=False))
    return True


def agent_loop(
    base: str, name: str, recorder: Recorder, stop: threading.Event, think: float, log: list
) -> None:
    from tests.integration.harness import HttpClient
    from tests.second_factor import totp_code

    rng = random.Random(name)
    tried: set[str] = set()
    client = HttpClient(base, timeout=60)
    login = client.get("/desk/login/")
    values = {**login.form().fields, "username": name, "password": AGENT_PASSWORD}
    landed = recorder.timed(
        "POST /desk/login/",
        lambda: client.post("/desk/login/", values, referer=login.url),
    )
    if landed is not None and landed.path == "/desk/second-factor/":
        step = landed
        values = {**step.form().fields, "otp_token": totp_code()}
        landed = recorder.timed(
            "POST /desk/second-factor/",
            lambda: client.post(step.url, values, referer=step.url),
        )
    if landed is None or landed.path != "/desk/":
        recorder.errors.append(f"{name} could not log in")
        return
    while not stop.is_set():
        queue = recorder.timed("GET /desk/", lambda: client.get("/desk/", follow=False))
        refs = REF.findall(queue.text) if queue is not None else []
        if not refs:
            stop.wait(think)
            continue
        ref = rng.choice(refs[:10])
        page_path = f"/desk/tickets/{ref}/"
        page = recorder.timed(
            "GET /desk/tickets/<ref>/", lambda path=page_path: client.get(path, follow=False)
        )
        if page is None or page.status != 200:
            continue
        actions = {
            urllib.parse.urlsplit(urllib.parse.urljoin(page.url, f.action)).path: f
            for f in page.forms
            if f.method == "post"
        }
        # Registrations are confirmed (once: a refused confirm is rejected next time); the
        # other kinds, mostly without an account in this registry, are rejected.
        wanted = "confirm" if ref.startswith("REG-") and ref not in tried else "reject"
        tried.add(ref)
        target = f"{page_path}{wanted}/"
        if target in actions:
            values = dict(actions[target].fields)
            if wanted == "reject":
                reasons = REASON.findall(page.text)
                values["reason"] = reasons[0] if reasons else "other"
            done = recorder.timed(
                f"POST /desk/tickets/<ref>/{wanted}/",
                lambda target=target, values=values, referer=page.url: client.post(
                    target, values, referer=referer, follow=False
                ),
            )
            if done is not None:
                log.append((time.time(), ref, wanted, done.status))
        stop.wait(think * rng.uniform(0.5, 1.5))


def sampler(stop: threading.Event, out: dict[str, list[float]], redis_url: str, db: str) -> None:
    import psycopg
    import redis

    client = redis.Redis.from_url(redis_url)
    admin = urllib.parse.urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        while not stop.is_set():
            try:
                out["db_connections"].append(
                    conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [db]
                    ).fetchone()[0]
                )
                out["redis_used_mb"].append(client.info("memory")["used_memory"] / 2**20)
                out["queue_depth"].append(client.llen("celery"))
                out["load1"].append(os.getloadavg()[0])
            except Exception as exc:  # a sample lost is not a result
                print("sampler:", exc, file=sys.stderr)
            stop.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2.0, help="public submissions per second")
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--think", type=float, default=2.0, help="agent pause between decisions")
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--drain", type=float, default=300.0, help="max wait for the outbox")
    add_keep_argument(parser)
    args = parser.parse_args()
    with dropped_unless_kept(os.environ["DATABASE_URL"], keep=args.keep, prefix=PREFIX):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself (its database is dropped afterwards unless --keep)."""

    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    db_name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    out_dir = ROOT / "var" / "bench"
    log_dir = out_dir / "load-logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    started_load = os.getloadavg()

    print(f"recreating {db_name}, emptying {redis_url} …", flush=True)
    database_recreate(database_url, prefix=PREFIX)
    django.setup()
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    pool = seed(args.members, args.agents)

    sink = Sink().start()
    env = {
        **os.environ,
        **LIMITS_RAISED,
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
        "GUICHET_VAR_DIR": str(out_dir / "var"),
        "GUICHET_OUTBOX_SWEEP_SECONDS": "10",
        "GUICHET_BROKER_CHECK_ON_WORKER_START": "0",
        "PYTHONUNBUFFERED": "1",
    }
    from tests.integration.harness import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = start_process(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "desk.wsgi",
            f"--bind=127.0.0.1:{port}",
            "--workers=2",
            "--threads=4",
            "--timeout=60",
        ],
        env,
        log_dir / "gunicorn.log",
    )
    worker = start_process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "desk",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=WARNING",
            "-B",
            f"--schedule={log_dir / 'celerybeat-schedule'}",
            "--hostname=load@guichet",
        ],
        env,
        log_dir / "worker.log",
    )
    recorder = Recorder()
    decisions: list[tuple[float, str, str, int]] = []
    samples: dict[str, list[float]] = collections.defaultdict(list)
    stop = threading.Event()
    try:
        from tests.faults.services import wait_port

        wait_port(port, timeout=60)
        time.sleep(3)  # the worker's first connection to the broker
        threading.Thread(
            target=sampler, args=(stop, samples, redis_url, db_name), daemon=True
        ).start()
        agents = [
            threading.Thread(
                target=agent_loop,
                args=(base, f"load-agent-{n}", recorder, stop, args.think, decisions),
                daemon=True,
            )
            for n in range(args.agents)
        ]
        for agent in agents:
            agent.start()

        total = int(args.minutes * 60 * args.rate)
        print(f"{total} submissions at {args.rate}/s for {args.minutes} min …", flush=True)
        t0 = time.monotonic()
        futures = []
        with ThreadPoolExecutor(max_workers=64) as pool_exec:
            for seq in range(total):
                delay = t0 + seq / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool_exec.submit(submit_one, base, recorder, pool, seq))
        accepted = sum(1 for f in futures if f.result())
        elapsed = time.monotonic() - t0
        stop.set()
        for agent in agents:
            agent.join(timeout=60)

        from workflows.models import OutboxMessage, OutboxStatus

        drain_start = time.monotonic()
        while (
            OutboxMessage.objects.exclude(status=OutboxStatus.SENT).exists()
            and time.monotonic() - drain_start < args.drain
        ):
            time.sleep(1)
        drained_after = time.monotonic() - drain_start
        time.sleep(5)
        report = measure(recorder, decisions, samples, sink, accepted, total, elapsed)
        report.update(
            {
                "args": vars(args),
                "drain_seconds_after_load": round(drained_after, 1),
                "loadavg_before": started_load,
                "loadavg_after": os.getloadavg(),
                "cpus": os.cpu_count(),
            }
        )
    finally:
        stop.set()
        stop_process(web)
        stop_process(worker)
        sink.stop()
    (out_dir / "load.json").write_text(json.dumps(report, indent=2, default=str))
    print(markdown(report))


def measure(
    recorder: Recorder,
    decisions: list,
    samples: dict[str, list[float]],
    sink: Sink,
    accepted: int,
    total: int,
    elapsed: float,
) -> dict[str, Any]:
    from tickets.models import Ticket
    from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus, RequestAlias

    endpoints = {}
    for label, values in sorted(recorder.samples.items()):
        endpoints[label] = {
            "n": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "5xx": sum(c for (lbl, s), c in recorder.statuses.items() if lbl == label and s >= 500),
        }
    statuses = collections.Counter()
    for (_, status), count in recorder.statuses.items():
        statuses[status] += count
    stored = Ticket.objects.filter(channel="web").count() + RequestAlias.objects.count()

    messages = {
        m.pk: m
        for m in OutboxMessage.objects.select_related("ticket").only(
            "pk", "template", "status", "created_at", "sent_at", "ticket__decided_at"
        )
    }
    lag = [(m.sent_at - m.created_at).total_seconds() for m in messages.values() if m.sent_at]
    received_by_id = collections.Counter(mid for _, mid, _ in sink.received)
    first_receipt: dict[int, float] = {}
    for when, mid, _ in sink.received:
        if mid.isdigit():
            first_receipt.setdefault(int(mid), when)
    credentials = [m for m in messages.values() if m.template == EmailTemplate.CREDENTIALS]
    decision_to_smtp = [
        first_receipt[m.pk] - m.ticket.decided_at.timestamp()
        for m in credentials
        if m.pk in first_receipt and m.ticket is not None and m.ticket.decided_at
    ]
    duplicate_credentials = sum(1 for m in credentials if received_by_id.get(str(m.pk), 0) > 1)
    per_ticket = collections.Counter(m.ticket_id for m in credentials)
    decided = collections.Counter((a, s) for _, _, a, s in decisions)
    states = collections.Counter(Ticket.objects.values_list("state", flat=True))

    def stats(values: list[float]) -> dict[str, float]:
        if not values:
            return {"n": 0}
        return {
            "n": len(values),
            "p50_s": round(percentile(values, 0.5), 2),
            "p95_s": round(percentile(values, 0.95), 2),
            "max_s": round(max(values), 2),
        }

    return {
        "elapsed_s": round(elapsed, 1),
        "submissions_started": total,
        "submissions_accepted": accepted,
        "requests_stored": stored,
        "statuses": dict(statuses),
        "errors_5xx": sum(c for s, c in statuses.items() if s >= 500),
        "client_errors": recorder.errors[:20],
        "endpoints": endpoints,
        "decisions": {f"{a} {s}": c for (a, s), c in decided.items()},
        "ticket_states": dict(states),
        "outbox": {
            "total": len(messages),
            "not_sent": sum(1 for m in messages.values() if m.status != OutboxStatus.SENT),
            "failed": sum(1 for m in messages.values() if m.status == OutboxStatus.FAILED),
            "lag": stats(lag),
        },
        "credentials": {
            "messages": len(credentials),
            "decision_to_smtp": stats(decision_to_smtp),
            "over_10_min": sum(1 for v in decision_to_smtp if v > 600),
            "duplicate_emails": duplicate_credentials,
            "tickets_with_two_credentials_rows": sum(1 for c in per_ticket.values() if c > 1),
        },
        "emails_received": len(sink.received),
        "db_connections_max": max(samples["db_connections"], default=0),
        "redis_used_mb_max": round(max(samples["redis_used_mb"], default=0), 1),
        "queue_depth_max": max(samples["queue_depth"], default=0),
        "load1_median": round(statistics.median(samples["load1"]), 2) if samples["load1"] else 0,
        "load1_max": round(max(samples["load1"], default=0), 2),
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Load: {r['args']['rate']}/s for {r['args']['minutes']} min, {r['args']['agents']} agents"
        f" ({r['cpus']} CPUs; load average median {r['load1_median']}, max {r['load1_max']})",
        "",
        "| Endpoint | n | p50 ms | p95 ms | p99 ms | 5xx |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, e in r["endpoints"].items():
        lines.append(
            f"| {label} | {e['n']} | {e['p50_ms']} | {e['p95_ms']} | {e['p99_ms']} | {e['5xx']} |"
        )
    c, o = r["credentials"], r["outbox"]
    lines += [
        "",
        f"- 5xx: {r['errors_5xx']}; statuses {r['statuses']}",
        f"- submissions started {r['submissions_started']}, accepted {r['submissions_accepted']}, "
        f"stored (tickets + attached) {r['requests_stored']}",
        f"- decisions posted: {r['decisions']}; tickets by state {r['ticket_states']}",
        f"- outbox: {o['total']} messages, {o['not_sent']} not sent, {o['failed']} failed; "
        f"lag {o['lag']}",
        f"- credentials: {c['messages']}; decision→SMTP {c['decision_to_smtp']}; "
        f"over 10 min {c['over_10_min']}; duplicate e-mails {c['duplicate_emails']}",
        f"- outbox drained {r['drain_seconds_after_load']} s after the load stopped",
        f"- peak DB connections {r['db_connections_max']}, Redis used memory max "
        f"{r['redis_used_mb_max']} MB (whole instance), Celery queue depth max "
        f"{r['queue_depth_max']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
