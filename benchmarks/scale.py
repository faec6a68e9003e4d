"""Production-shaped scale run (issue 15, "Prove it"): two web nodes, two workers, PgBouncer.

    .venv/bin/python benchmarks/scale.py                      # 600 s steady, 120 s overload
    .venv/bin/python benchmarks/scale.py --duration 120 --overload-duration 40
    make benchmark-scale                                       # DURATION=… OVERLOAD=… KEEP=1

Starts, on loopback ports from --port-base (default 21300): a throwaway PostgreSQL database
(`guichet_scale`, SCALE_DATABASE_URL overrides; recreated, dropped at the end unless --keep)
behind a private PgBouncer in transaction mode, a private Redis (AOF, noeviction), TWO gunicorn
instances (production settings over plain HTTP, each its own shed directory, as two nodes), TWO
Celery workers (the first with the embedded, locked beat that runs the outbox sweep) and an SMTP
sink in this process that counts the messages per outbox row and per reference. The process
classes are the test harness's (tests/integration/harness.py, tests/faults/).

Then locust (`benchmarks/scale_locustfile.py`, one locust process per phase) drives member users
(registrations 60%, recoveries 40%) and desk agents logged in with a TOTP code (read the queue,
open a ticket, confirm or reject it):

1. capacity probes, `--probe-duration` each: closed-loop members against ONE instance, then
   against both (accepted submissions per second: the scaling ratio 1 → 2);
2. steady: a fixed rate (`--rate`, default half the two-instance capacity) for `--duration`;
3. overload: 3 times the two-instance capacity for `--overload-duration`.

After the outbox drains it prints, per phase and endpoint, throughput and p50/p95/p99; the
scaling ratio; 5xx other than the shed 503s (must be 0); every accepted submission found in the
database; every decided ticket e-mailed exactly once (the sink's count per outbox row and per
reference); the promise p95 (ticket.decided_at → outbox sent_at, the SMTP accept); the desk p95
during the overload. Writes var/bench/scale.json. Exit status 1 when a correctness check fails.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# First: run as `benchmarks/scale.py`, the script's folder would put benchmarks/desk.py before
# the `desk` package.
sys.path.insert(0, str(ROOT))

# The process classes of the test harness (none of them touches Django when imported).
from tests.faults.served import Gunicorn  # noqa: E402
from tests.faults.services import SAFE_REDIS_ARGS, PrivateRedis  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    CeleryWorker,
    PgBouncer,
    SmtpSink,
    database_url,
    text_part,
    worker_env,
)

PREFIX = "guichet_scale"
AGENT_PASSWORD = "scale agent password 123"  # noqa: S105  (a benchmark account)
# One submission every 20 s per locust member user: many users each far below their own pace, so
# the offered rate holds (nearly open loop) even when an answer takes seconds under overload.
MEMBER_RATE_PER_USER = 0.05
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Nguyễn", "O'Brien", "Lefèvre", "Müller", "Roux"]
FIRST_NAMES = ["Zoë", "Łukasz", "Amélie", "Noël", "Inès", "Loïc", "Hélène", "Théo"]
# One client IP drives everything: the abuse limits would stop it within seconds.
LIMITS_RAISED = {
    "GUICHET_SUBMISSIONS_PER_IP_PER_HOUR": "100000000",
    "GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR": "100000000",
    "GUICHET_EMAILS_PER_ADDRESS_PER_HOUR": "100000000",
    "GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE": "100000000",
    "GUICHET_LOGIN_FAILURES_PER_IP_PER_HOUR": "100000000",
    "GUICHET_STEP_UP_SECONDS": "86400",
}
DECISION_TEMPLATES = ("credentials", "rejection")
DESK_READS = ("GET /desk/", "GET /desk/tickets/<ref>/")


# --- pure parts: statistics, checks, report (tests/benchmarks/test_scale_report.py) ----------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (values need not be sorted); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[min(len(ordered) - 1, max(0, rank - 1))]


@dataclass
class Phase:
    """What one locust run recorded (scale_locustfile.py's SCALE_OUT) and how long it ran."""

    name: str
    seconds: float
    requests: list[list[Any]] = field(default_factory=list)  # name, status, ms, shed, epoch
    accepted: list[list[Any]] = field(default_factory=list)  # reference, kind, epoch
    decisions: list[list[Any]] = field(default_factory=list)  # reference, action, status, epoch
    errors: list[str] = field(default_factory=list)
    target_rate: float | None = None

    @classmethod
    def load(cls, name: str, seconds: float, path: Path, target_rate: float | None = None) -> Phase:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return cls(
            name=name,
            seconds=seconds,
            requests=data.get("requests", []),
            accepted=data.get("accepted", []),
            decisions=data.get("decisions", []),
            errors=data.get("errors", []),
            target_rate=target_rate,
        )

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Per request name: count, throughput, p50/p95/p99 (ms), shed 503s, other 5xx."""
        by_name: dict[str, list[list[Any]]] = collections.defaultdict(list)
        for row in self.requests:
            by_name[row[0]].append(row)
        out = {}
        for name, rows in sorted(by_name.items()):
            times = [float(r[2]) for r in rows]
            out[name] = {
                "n": len(rows),
                "per_s": round(len(rows) / self.seconds, 2) if self.seconds else 0.0,
                "p50_ms": round(percentile(times, 0.50), 1),
                "p95_ms": round(percentile(times, 0.95), 1),
                "p99_ms": round(percentile(times, 0.99), 1),
                "shed_503": sum(1 for r in rows if r[1] == 503 and r[3]),
                "other_5xx": sum(1 for r in rows if int(r[1]) >= 500 and not r[3]),
                "no_answer": sum(1 for r in rows if int(r[1]) == 0),
                "statuses": dict(sorted(collections.Counter(str(r[1]) for r in rows).items())),
            }
        return out

    def accepted_per_s(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0

    def p95_of(self, names: Iterable[str]) -> float:
        wanted = set(names)
        return percentile([float(r[2]) for r in self.requests if r[0] in wanted], 0.95)


def unexpected_5xx(phases: Iterable[Phase]) -> int:
    """5xx answers that are not the shedding's (a 503 carrying Retry-After)."""
    return sum(1 for p in phases for r in p.requests if int(r[1]) >= 500 and not r[3])


def no_answers(phases: Iterable[Phase]) -> int:
    """Requests that got no HTTP answer at all (connection refused or reset, timeout)."""
    return sum(1 for p in phases for r in p.requests if int(r[1]) == 0)


def missing_submissions(accepted: Iterable[str], stored: set[str]) -> list[str]:
    """Accepted references (a 302 to their status page) that the database does not hold."""
    return sorted({ref for ref in accepted if ref not in stored})


@dataclass
class DecisionRow:
    """A decided ticket's decision e-mail as the database has it."""

    reference: str
    outbox_id: int | None  # None: the decision has no decision e-mail row at all
    rows_for_ticket: int
    decided_at: float
    sent_at: float | None


def email_check(
    decided: Iterable[DecisionRow],
    received_per_row: Mapping[int, int],
    received_per_reference: Mapping[str, int],
) -> dict[str, Any]:
    """Every decided ticket: exactly one decision row, received exactly once, naming its reference.

    Returns the counts and up to 20 examples of each failure; `ok` when there is none.
    """
    rows = list(decided)
    no_row = [d.reference for d in rows if d.outbox_id is None]
    several_rows = [d.reference for d in rows if d.rows_for_ticket > 1]
    not_once = [
        f"{d.reference} x{received_per_row.get(d.outbox_id, 0)}"
        for d in rows
        if d.outbox_id is not None and received_per_row.get(d.outbox_id, 0) != 1
    ]
    unnamed = [
        d.reference
        for d in rows
        if d.outbox_id is not None and received_per_reference.get(d.reference, 0) < 1
    ]
    return {
        "decided": len(rows),
        "no_decision_row": len(no_row),
        "several_decision_rows": len(several_rows),
        "not_received_exactly_once": len(not_once),
        "reference_not_named": len(unnamed),
        "examples": (no_row + several_rows + not_once + unnamed)[:20],
        "ok": not (no_row or several_rows or not_once or unnamed),
    }


def promise_seconds(decided: Iterable[DecisionRow]) -> list[float]:
    """Decision → SMTP accept (the outbox row's sent_at), seconds, for the rows sent."""
    return [d.sent_at - d.decided_at for d in decided if d.sent_at is not None]


def scaling_sentence(one: float, two: float, cpus: int) -> str:
    """What the 1 → 2 instances ratio means, honestly, for this machine and for more cores."""
    if one <= 0:
        return "no submission was accepted with one instance: no ratio"
    ratio = two / one
    if ratio < 1.25:
        meaning = (
            f"on this {cpus}-core machine both instances share the same cores, and the "
            "submissions are CPU-bound (the Argon2 hash), so a second instance adds almost "
            "nothing here. That is expected and says nothing against the design: the instances "
            "share no state but PostgreSQL (through PgBouncer) and Redis, so on separate "
            "machines or more cores capacity should grow with the cores given to the web tier, "
            "until PostgreSQL becomes the limit (not measured here)"
        )
    else:
        meaning = (
            f"on this {cpus}-core machine a second instance added capacity although both share "
            "the same cores: each instance admits at most GUICHET_HASH_CONCURRENCY hashes at once "
            "(default: the core count), so two instances hash twice as many in parallel, and on "
            "a machine shared with other jobs more busy processes also take a larger share of the "
            "CPU. It does not show what two machines would give: there each instance has cores "
            "of its own and shares only PostgreSQL (through PgBouncer) and Redis, so capacity "
            "should grow with the web tier's cores until PostgreSQL or the workers become the "
            "limit (not measured here)"
        )
    return f"2 instances / 1 instance = {ratio:.2f}: {meaning}."


def checks(report: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    """The correctness checks (name, passed, detail); any failure makes the exit status 1."""
    missing = report["submissions"]["missing"]
    mail = report["emails"]
    return [
        ("no 5xx other than the shed 503s", report["unexpected_5xx"] == 0,
         f"{report['unexpected_5xx']} unexpected 5xx"),
        ("every request answered", report["no_answer"] == 0,
         f"{report['no_answer']} without an HTTP answer"),
        ("every accepted submission stored", not missing and report["submissions"]["accepted"] > 0,
         f"{report['submissions']['accepted']} accepted, {len(missing)} missing {missing[:5]}"),
        ("decisions were made", mail["decided"] > 0, f"{mail['decided']} decided tickets"),
        ("every decision e-mailed exactly once", bool(mail["ok"]),
         ", ".join(f"{k} {v}" for k, v in mail.items() if k not in ("ok", "examples"))
         + (f"; e.g. {mail['examples'][:5]}" if mail["examples"] else "")),
        ("outbox drained", report["outbox_unsent"] == 0, f"{report['outbox_unsent']} unsent"),
        ("no duplicate SMTP delivery of any outbox row", report["duplicate_deliveries"] == 0,
         f"{report['duplicate_deliveries']} rows delivered more than once"),
        ("agents logged in", not report["login_errors"], "; ".join(report["login_errors"][:3])),
    ]  # fmt: skip


def render(report: Mapping[str, Any]) -> str:
    """The printed report (Markdown)."""
    lines = [
        f"# Scale run — {report['cpus']} CPUs, load average {report['loadavg_before']} before, "
        f"{report['loadavg_after']} after (machine shared with other jobs)",
        "",
    ]
    for phase in report["phases"]:
        target = f", target {phase['target_rate']}/s" if phase.get("target_rate") else ""
        lines += [
            f"## {phase['name']} ({phase['seconds']:.0f} s{target}; accepted submissions "
            f"{phase['accepted_per_s']:.2f}/s)",
            "",
            "| endpoint | n | per s | p50 ms | p95 ms | p99 ms | shed 503 | other 5xx | statuses |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, e in phase["endpoints"].items():
            lines.append(
                f"| {name} | {e['n']} | {e['per_s']} | {e['p50_ms']} | {e['p95_ms']} | "
                f"{e['p99_ms']} | {e['shed_503']} | {e['other_5xx']} | "
                + " ".join(f"{k}: {v}" for k, v in e.get("statuses", {}).items())
                + " |"
            )
        lines.append("")
    s, p = report["scaling"], report["promise"]
    lines += [
        f"- capacity: {s['one']:.2f} accepted submissions/s with 1 instance, {s['two']:.2f} with "
        f"2; {s['sentence']}",
        f"- desk p95 during the overload: {report['desk_p95_overload_ms']} ms "
        f"(steady: {report['desk_p95_steady_ms']} ms)",
        f"- promise (decision → SMTP accept): n {p['n']}, p50 {p['p50_s']} s, p95 {p['p95_s']} s, "
        f"max {p['max_s']} s; over 10 min: {p['over_600_s']}",
        f"- submissions: {report['submissions']['accepted']} accepted, "
        f"{report['submissions']['stored_total']} requests stored (tickets + attached)",
        f"- outbox drained {report['drain_seconds']} s after the load; "
        f"{report['emails_received']} e-mails received by the sink",
        "",
    ]
    for name, passed, detail in checks(report):
        lines.append(f"- [{'PASS' if passed else 'FAIL'}] {name}: {detail}")
    return "\n".join(lines)


def rounded_stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_s": round(percentile(values, 0.5), 2) if values else None,
        "p95_s": round(percentile(values, 0.95), 2) if values else None,
        "max_s": round(max(values), 2) if values else None,
        "over_600_s": sum(1 for v in values if v > 600),
    }


# --- the topology -----------------------------------------------------------------------------


def configure_environment(args: argparse.Namespace) -> None:
    """This process's Django: the benchmark database directly, the private Redis, no DEBUG."""
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{args.port_base + 2}/0"
    os.environ.setdefault("SECRET_KEY", "scale-benchmark-only-not-a-secret-" + "x" * 40)
    os.environ["DJANGO_SETTINGS_MODULE"] = "desk.settings_loopback"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.pop("DEBUG", None)
    for name in ("CELERY_BROKER_URL", "CACHE_URL", "GUICHET_LIMITS_URL", "EMAIL_URL"):
        os.environ.pop(name, None)


def seed(members: int, agent_names: Iterable[str]) -> list[dict[str, str]]:
    """A registry of `members` members (a health coverage each) and the agents (TOTP devices)."""
    from django.contrib.auth.models import Group

    from members.models import Account, Coverage, CoverageKind, Member
    from tests.second_factor import ensure_device

    rng = random.Random(15)
    Member.objects.bulk_create(
        [
            Member(
                member_number=f"7{n:08d}",
                last_name=rng.choice(LAST_NAMES),
                first_name=rng.choice(FIRST_NAMES),
                birth_date=datetime.date(1940, 1, 1)
                + datetime.timedelta(days=rng.randrange(25000)),
                email=f"registry{n}@example.org",
            )
            for n in range(members)
        ],
        batch_size=2000,
    )
    Coverage.objects.bulk_create(
        [Coverage(member=m, kind=CoverageKind.HEALTH_PRINCIPAL) for m in Member.objects.all()],
        batch_size=2000,
    )
    group, _ = Group.objects.get_or_create(name="agents")
    for name in agent_names:
        account = Account(username=name, is_staff=True)
        account.set_password(AGENT_PASSWORD)
        account.save()
        account.groups.add(group)
        ensure_device(account)
    return [
        {
            "member_number": m.member_number,
            "last_name": m.last_name,
            "first_name": m.first_name,
            "birth_date": m.birth_date.strftime("%d/%m/%Y"),
        }
        for m in Member.objects.all()
    ]


class CountingSink:
    """The harness's SMTP sink, counted per outbox row (X-Guichet-Message) and per reference."""

    def __init__(self, port: int) -> None:
        self.sink = SmtpSink(port=port)

    def start(self) -> CountingSink:
        self.sink.start()
        return self

    def stop(self) -> None:
        self.sink.stop()

    def counts(self) -> tuple[collections.Counter[int], collections.Counter[str]]:
        reference = re.compile(r"\b[A-Z]{3}-[0-9A-HJKMNP-TV-Z]{8}\b")
        per_row: collections.Counter[int] = collections.Counter()
        per_reference: collections.Counter[str] = collections.Counter()
        for message in self.sink.snapshot():
            row = str(message.get("X-Guichet-Message", ""))
            if row.isdigit():
                per_row[int(row)] += 1
            named = set(reference.findall(f"{message.get('Subject', '')}\n{text_part(message)}"))
            for ref in named:
                per_reference[ref] += 1
        return per_row, per_reference


class Topology:
    """PgBouncer, Redis, two gunicorns, two workers, the sink: started and stopped together."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.started: list[Any] = []
        self.webs: list[Any] = []
        self.workers: list[Any] = []

    def start(self) -> None:
        from django.conf import settings

        base = self.args.port_base
        redis = PrivateRedis(port=base + 2, directory=self.scratch, args=list(SAFE_REDIS_ARGS))
        redis.start()
        self.started.append(redis)

        db = settings.DATABASES["default"]
        bouncer = PooledPgBouncer(
            upstream_host=db.get("HOST") or "127.0.0.1",
            upstream_port=int(db.get("PORT") or 5432),
            port=base + 1,
            pool_size=self.args.pool_size,
        ).start()
        self.started.append(bouncer)
        through = bouncer.database_settings(db)

        self.sink = CountingSink(base + 3).start()
        self.started.append(self.sink)

        var = self.scratch / "var"
        env = worker_env(database_settings=through, email_url=self.sink.sink.url, var_dir=var)
        env.update(LIMITS_RAISED)
        env.update(
            DJANGO_SETTINGS_MODULE="desk.settings_loopback",
            DATABASE_URL=database_url(through),
            LOG_LEVEL="WARNING",
            GUICHET_OUTBOX_SWEEP_SECONDS="10",
            PYTHONPATH=str(ROOT),
        )
        env.pop("GUICHET_BEAT_LOCK_SECONDS", None)  # the production default, not the tests' 5 s
        self.env = env
        logs = self.scratch / "logs"
        for n in range(2):
            worker = CeleryWorker(
                env=env,
                log_path=logs / f"worker-{n}.log",
                hostname=f"scale-{n}@guichet",
                beat=n == 0,  # one beat (single-instance lock): the outbox sweep
                extra_args=["--loglevel=WARNING"],
            )
            self.started.append(worker)
            worker.start(timeout=120)
            self.workers.append(worker)
        for n in range(2):
            node_env = {
                **env,
                "GUICHET_SHED_DIR": str(self.scratch / f"shed-{n}"),
                # Behind a load balancer the backend's keep-alive outlives the balancer's idle
                # timeout; gunicorn's 2 s default races the users' reused connections (a reset).
                "GUNICORN_CMD_ARGS": "--keep-alive=75",
            }
            web = Gunicorn(
                env=node_env,
                log_path=logs / f"gunicorn-{n}.log",
                workers=self.args.web_workers,
                threads=self.args.web_threads,
            )
            web.port = base + 10 + n
            self.started.append(web)
            web.start(timeout=60)
            self.webs.append(web)

    @property
    def urls(self) -> list[str]:
        return [web.url for web in self.webs]

    def stop(self) -> None:
        for process in reversed(self.started):
            try:
                process.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping {type(process).__name__}: {exc}", file=sys.stderr)
        self.started.clear()


class PooledPgBouncer(PgBouncer):
    """The harness's PgBouncer (transaction mode) with a server pool sized for the run: the
    tests' 4 server connections are meant to expose session state, not to carry a load."""

    def __init__(self, *, pool_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def config(self) -> str:
        return (
            super()
            .config()
            .replace("default_pool_size = 4", f"default_pool_size = {self.pool_size}")
        )


# --- the phases --------------------------------------------------------------------------------


def run_locust(
    name: str,
    *,
    hosts: Sequence[str],
    seconds: float,
    members: int,
    rate_per_user: float,
    agents: int,
    agent_prefix: str,
    identities: Path,
    out_dir: Path,
    target_rate: float | None,
    agent_pacing: float,
) -> Phase:
    """One locust run (its own process: gevent stays out of this Django process)."""
    from tests.second_factor import TEST_TOTP_SECRET

    out = out_dir / f"phase-{name}.json"
    out.unlink(missing_ok=True)
    env = {
        **os.environ,
        "SCALE_HOSTS": ",".join(hosts),
        "SCALE_MEMBER_RATE_PER_USER": str(rate_per_user),
        "SCALE_AGENTS": str(agents),
        "SCALE_AGENT_PREFIX": agent_prefix,
        "SCALE_AGENT_PASSWORD": AGENT_PASSWORD,
        "SCALE_TOTP_SECRET": TEST_TOTP_SECRET,
        "SCALE_AGENT_PACING": str(agent_pacing),
        "SCALE_IDENTITIES": str(identities),
        "SCALE_OUT": str(out),
        "PYTHONPATH": str(ROOT),  # benchmarks.scale_browser
    }
    users = members + agents
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f", str(ROOT / "benchmarks" / "scale_locustfile.py"),
        "--headless", "--only-summary", "--loglevel", "ERROR",
        "-u", str(users), "-r", str(users),
        "-t", f"{int(seconds)}s", "--stop-timeout", "30",
        "--host", hosts[0],
    ]  # fmt: skip
    print(f"phase {name}: {members} member users + {agents} agents on {len(hosts)} instance(s) "
          f"for {seconds:.0f} s …", flush=True)  # fmt: skip
    started = time.monotonic()
    log = out_dir / f"locust-{name}.log"
    with log.open("wb") as output:
        subprocess.run(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=False
        )
    elapsed = time.monotonic() - started
    phase = Phase.load(name, min(elapsed, seconds), out, target_rate=target_rate)
    print(
        f"  {len(phase.accepted)} accepted ({phase.accepted_per_s():.2f}/s), "
        f"{len(phase.requests)} requests, {len(phase.decisions)} decisions",
        flush=True,
    )
    return phase


def wait_outbox_drained(limit: float) -> float:
    from workflows.models import OutboxMessage, OutboxStatus

    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not OutboxMessage.objects.exclude(
            status__in=[OutboxStatus.SENT, OutboxStatus.FAILED]
        ).exists():
            break
        time.sleep(1)
    return round(time.monotonic() - started, 1)


def decided_rows() -> list[DecisionRow]:
    from tickets.models import Ticket
    from workflows.models import OutboxMessage

    rows_by_ticket: dict[int, list[OutboxMessage]] = collections.defaultdict(list)
    for message in OutboxMessage.objects.filter(template__in=DECISION_TEMPLATES).only(
        "pk", "ticket_id", "sent_at"
    ):
        rows_by_ticket[message.ticket_id or 0].append(message)
    out = []
    for ticket in Ticket.objects.filter(decided_at__isnull=False).only(
        "pk", "reference", "decided_at"
    ):
        if ticket.decided_at is None:  # the filter above; for the type checker
            continue
        rows = rows_by_ticket.get(ticket.pk, [])
        first = min(rows, key=lambda m: m.pk) if rows else None
        out.append(
            DecisionRow(
                reference=ticket.reference,
                outbox_id=first.pk if first else None,
                rows_for_ticket=len(rows),
                decided_at=ticket.decided_at.timestamp(),
                sent_at=first.sent_at.timestamp() if first and first.sent_at else None,
            )
        )
    return out


def measure(
    topology: Topology, phases: list[Phase], scaling: dict[str, Any], drain: float
) -> dict[str, Any]:
    from tickets.models import Ticket
    from workflows.models import OutboxMessage, OutboxStatus, RequestAlias

    stored = set(Ticket.objects.values_list("reference", flat=True)) | set(
        RequestAlias.objects.values_list("reference", flat=True)
    )
    accepted = [row[0] for p in phases for row in p.accepted]
    decided = decided_rows()
    per_row, per_reference = topology.sink.counts()
    by_name = {p.name: p for p in phases}
    promise = promise_seconds(decided)

    def p95(name: str) -> float | None:
        value = by_name[name].p95_of(DESK_READS) if name in by_name else float("nan")
        return None if math.isnan(value) else round(value, 1)

    return {
        "cpus": os.cpu_count(),
        "phases": [
            {
                "name": p.name,
                "seconds": round(p.seconds, 1),
                "target_rate": p.target_rate,
                "accepted_per_s": round(p.accepted_per_s(), 2),
                "endpoints": p.endpoints(),
            }
            for p in phases
        ],
        "scaling": scaling,
        "unexpected_5xx": unexpected_5xx(phases),
        "no_answer": no_answers(phases),
        "login_errors": [e for p in phases for e in p.errors if "log in" in e],
        "client_errors": [e for p in phases for e in p.errors][:20],
        "submissions": {
            "accepted": len(accepted),
            "missing": missing_submissions(accepted, stored),
            "stored_total": len(stored),
        },
        "emails": email_check(decided, per_row, per_reference),
        "duplicate_deliveries": sum(1 for count in per_row.values() if count > 1),
        "emails_received": sum(per_row.values()),
        "outbox_unsent": OutboxMessage.objects.exclude(status=OutboxStatus.SENT).count(),
        "promise": rounded_stats(promise),
        "desk_p95_overload_ms": p95("overload"),
        "desk_p95_steady_ms": p95("steady"),
        "drain_seconds": drain,
        "ticket_states": dict(collections.Counter(Ticket.objects.values_list("state", flat=True))),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="steady phase, seconds")
    parser.add_argument("--overload-duration", type=float, default=120.0, help="3 x capacity")
    parser.add_argument("--probe-duration", type=float, default=60.0, help="each capacity probe")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="steady submissions/s (default: capacity / 2)"
    )
    parser.add_argument("--probe-users", type=int, default=6, help="closed-loop members")
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--agent-pacing", type=float, default=2.0, help="s per agent iteration")
    parser.add_argument("--members", type=int, default=5000, help="registry size")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers/instance")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer default_pool_size")
    parser.add_argument("--port-base", type=int, default=21300)
    parser.add_argument("--drain", type=float, default=300.0, help="max wait for the outbox, s")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SCALE_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{PREFIX}"
        ),
    )
    from benchmarks.databases import add_keep_argument, database_recreate, dropped_unless_kept

    add_keep_argument(parser)
    args = parser.parse_args(argv)
    configure_environment(args)
    with dropped_unless_kept(args.database_url, keep=args.keep, prefix=PREFIX):
        database_recreate(args.database_url, prefix=PREFIX)
        return run(args)


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    loadavg_before = [round(v, 2) for v in os.getloadavg()]
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    phase_names = ["probe-1", "probe-2", "steady", "overload"]
    agent_names = [f"scale-{p}-{n}" for p in phase_names for n in range(args.agents)]
    identities = seed(args.members, agent_names)
    scratch = Path(tempfile.mkdtemp(prefix="guichet-scale-"))
    identities_file = out_dir / "scale-identities.json"
    identities_file.write_text(json.dumps(identities), encoding="utf-8")
    topology = Topology(args, scratch)
    try:
        topology.start()
        common = {
            "agents": args.agents,
            "identities": identities_file,
            "out_dir": out_dir,
            "agent_pacing": args.agent_pacing,
        }
        for url in topology.urls:  # warm every gunicorn worker (templates, catalogues)
            _warm(url, args.web_workers * 3)
        one = run_locust("probe-1", hosts=topology.urls[:1], seconds=args.probe_duration,
                         members=args.probe_users, rate_per_user=0, target_rate=None,
                         agent_prefix="scale-probe-1", **common)  # fmt: skip
        two = run_locust("probe-2", hosts=topology.urls, seconds=args.probe_duration,
                         members=args.probe_users * 2, rate_per_user=0, target_rate=None,
                         agent_prefix="scale-probe-2", **common)  # fmt: skip
        capacity = max(two.accepted_per_s(), one.accepted_per_s(), 0.1)
        rate = args.rate or round(capacity / 2, 2)
        steady = run_locust("steady", hosts=topology.urls, seconds=args.duration,
                            members=max(1, math.ceil(rate / MEMBER_RATE_PER_USER)),
                            rate_per_user=MEMBER_RATE_PER_USER, target_rate=rate,
                            agent_prefix="scale-steady", **common)  # fmt: skip
        overload_rate = round(3 * capacity, 2)
        overload = run_locust("overload", hosts=topology.urls, seconds=args.overload_duration,
                              members=max(1, math.ceil(overload_rate / MEMBER_RATE_PER_USER)),
                              rate_per_user=MEMBER_RATE_PER_USER, target_rate=overload_rate,
                              agent_prefix="scale-overload", **common)  # fmt: skip
        print("waiting for the outbox to drain …", flush=True)
        drain = wait_outbox_drained(args.drain)
        time.sleep(3)  # the sink's last messages
        scaling = {
            "one": round(one.accepted_per_s(), 2),
            "two": round(two.accepted_per_s(), 2),
            "ratio": round(two.accepted_per_s() / one.accepted_per_s(), 2)
            if one.accepted_per_s()
            else None,
            "sentence": scaling_sentence(
                one.accepted_per_s(), two.accepted_per_s(), os.cpu_count() or 1
            ),
        }
        report = measure(topology, [one, two, steady, overload], scaling, drain)
    finally:
        topology.stop()
    report["loadavg_before"] = loadavg_before
    report["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    report["args"] = {k: v for k, v in vars(args).items() if k != "database_url"}
    (out_dir / "scale.json").write_text(json.dumps(report, indent=2, default=str))
    print(render(report), flush=True)
    failed = [name for name, passed, _ in checks(report) if not passed]
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (logs kept in {scratch / 'logs'})", flush=True)
        return 1
    if args.keep:
        print(f"logs kept in {scratch / 'logs'} (--keep)", flush=True)
        return 0
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _warm(url: str, times: int) -> None:
    import urllib.request

    for path in ("/register/", "/recover/", "/desk/login/") * times:
        with urllib.request.urlopen(url + path, timeout=60) as answer:  # noqa: S310 (loopback)
            answer.read()


if __name__ == "__main__":
    sys.exit(main())
