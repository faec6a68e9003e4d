"""docs/security.md §9-11, the hard version: full journeys with every logger at DEBUG and exceptions
forced inside the credential task, then no temporary password, secret answer, NIR or session id
in a database dump, any Redis key, the Redis RDB and AOF files, or any log line.

Complements tests/integration/test_secrets_at_rest.py (happy path, the shared Redis, a queued
task caught in Redis). Here the whole stack runs on a private redis-server whose files we read:
gunicorn (access log, --log-level=debug) and a worker at DEBUG (Django, Celery, kombu, the
database logger included). Two faults are injected in the worker (GUICHET_FAULT_RAISE): right
after the temporary password's hash commits (caught: logged, retried with a new password) and
right after the SMTP accept (escapes the task: Celery logs the traceback; the sweep redelivers).

By design some of these values are at rest in PostgreSQL, so the database is scanned only for
what must never be there (temporary and new passwords, secret answers): the registry and the
ticket keep the NIR (agents compare it), and database sessions keep their key. smtplib's
debuglevel is not turned on: it prints the DATA, i.e. the credentials e-mail body, which carries
the temporary password by design; Django's SMTP backend never sets it.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from members.secret_answers import normalise_secret_answer
from tests.factories import MemberFactory, StaffFactory
from tests.faults.served import Gunicorn, PrivateBrokerWorker, private_redis_server, stack_env
from tests.integration.harness import (
    HttpClient,
    ScanReport,
    SmtpSink,
    outbox_template_of,
    scan_database,
    scan_logs,
    scan_redis,
    temporary_password_in,
)
from tests.integration.steps import desk_action, desk_login, member_login, register
from tests.integration.steps import registration_data as form
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus

SECRET_ANSWER = "Quetzal-Bermude Soixante"
NEW_PASSWORD = "Lantern meadow cobalt 59"
NIR = "148032A00100112"
SESSION_COOKIE = "__Host-sessionid"


def base64_forms(secret: str) -> list[bytes]:
    """The secret as it would appear inside base64 at each of the three byte alignments."""
    raw = secret.encode("utf-8")
    forms = []
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        forms.append(encoded[4 if pad else 0 : (pad + len(raw)) // 3 * 4])
    return forms


def scan_files(secrets: Iterable[str], report: ScanReport, paths: Iterable[Path]) -> None:
    """Raw bytes of data files (RDB, AOF): the secret in clear, casefolded or base64-encoded."""
    files = 0
    for path in paths:
        files += 1
        blob = path.read_bytes()
        folded = blob.decode("utf-8", errors="replace").casefold().encode("utf-8")
        for secret in secrets:
            needles = [secret.encode("utf-8"), *base64_forms(secret)]
            if any(n in blob for n in needles) or secret.casefold().encode() in folded:
                report.add(secret, f"file:{path.name}")
    report.scanned["redis_files"] = files


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_no_secret_at_rest_with_debug_logs_and_exceptions_in_the_credential_task(
    tmp_path: Path, smtp_sink: SmtpSink, process_log: Path
) -> None:
    by_number = MemberFactory(
        member_number="700900100",
        last_name="Lefèvre",
        first_name="Inès",
        birth_date=datetime.date(1961, 2, 3),
    )
    by_nir = MemberFactory(
        member_number="700900200",
        nir=NIR,
        last_name="Nguyễn",
        first_name="Loïc",
        birth_date=datetime.date(1948, 3, 15),
    )
    StaffFactory(username="agent-at-rest")
    answers = [SECRET_ANSWER, normalise_secret_answer(SECRET_ANSWER)]
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()

    with private_redis_server(redis_dir, extra_args=("--rdbcompression", "no")) as redis_server:
        env = stack_env(
            redis_url=redis_server.url,
            email_url=smtp_sink.url,
            var_dir=tmp_path,
            extra={
                "GUICHET_ALLOW_FAULT_INJECTION": "1",
                "GUICHET_FAULT_RAISE": "after_hash_commit,after_smtp_accept",
                "GUICHET_FAULT_ONCE_FILE": str(tmp_path / "raised"),
                "GUICHET_OUTBOX_LEASE_SECONDS": "3",
                "GUICHET_OUTBOX_SWEEP_SECONDS": "1",
                "GUICHET_OUTBOX_SWEEP_GRACE_SECONDS": "1",
                "GUICHET_OUTBOX_RETRY_BASE_SECONDS": "1",
            },
        )
        web = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log").start()
        worker = PrivateBrokerWorker(
            broker_url=redis_server.url,
            env=env,
            log_path=tmp_path / "worker" / "worker.log",
            hostname="at-rest-worker@guichet-tests",
        )
        try:
            worker.start()
            sessions: list[str] = []
            references = [
                register(
                    HttpClient(web.url),
                    form(by_number, email="ines@example.net", secret_answer=SECRET_ANSWER),
                ),
                register(
                    HttpClient(web.url),
                    form(
                        by_nir,
                        email="loic@example.net",
                        secret_answer=SECRET_ANSWER,
                        member_number="",
                        nir=NIR,
                    ),
                ),
            ]
            desk = HttpClient(web.url)
            desk_login(desk, "agent-at-rest", "staff password 123")
            sessions.append(desk.cookie(SESSION_COOKIE) or "")
            for reference in references:
                desk_action(desk, reference, "confirm")

            outbox = OutboxMessage.objects.all()
            wait_until(
                lambda: (
                    outbox.filter(template=EmailTemplate.CREDENTIALS).count() == 2
                    and not outbox.exclude(status=OutboxStatus.SENT).exists()
                ),
                timeout=90,
                what="every e-mail sent",
            )
            for point in ("after_hash_commit", "after_smtp_accept"):
                assert Path(f"{tmp_path / 'raised'}.{point}").exists(), f"{point} never raised"
            worker.wait_for_log(r"FaultInjected: fault injected at after_hash_commit")
            worker.wait_for_log(r"Traceback[\s\S]*FaultInjected")

            codes = [m for m in smtp_sink.snapshot() if outbox_template_of(m) == "credentials"]
            temporaries = [temporary_password_in(m) for m in codes]
            assert len(set(temporaries)) >= 2

            member = HttpClient(web.url)
            to_ines = [m for m in codes if "ines@example.net" in str(m["To"])]
            latest = temporary_password_in(to_ines[-1])
            assert member_login(member, by_number.member_number, latest).path == (
                "/account/password/"
            )
            sessions.append(member.cookie(SESSION_COOKIE) or "")
            changed = member.submit(
                "/account/password/",
                {
                    "old_password": latest,
                    "new_password1": NEW_PASSWORD,
                    "new_password2": NEW_PASSWORD,
                },
            )
            assert changed.path == "/account/"
            sessions.append(member.cookie(SESSION_COOKIE) or "")
            assert all(len(s) >= 32 for s in sessions), sessions
            wait_until(
                lambda: not outbox.exclude(status=OutboxStatus.SENT).exists(), 60, "the outbox"
            )

            before = redis_server.cli("LASTSAVE").strip()
            assert "Background saving started" in redis_server.cli("BGSAVE")
            wait_until(
                lambda: redis_server.cli("LASTSAVE").strip() != before, 30, "the RDB snapshot"
            )
        finally:
            worker.stop()
            web.stop()

        never_anywhere = [*temporaries, NEW_PASSWORD, *answers]
        never_outside_db = [NIR, *sessions]
        controls = {
            "db": references[0],
            "redis": "_kombu.binding.celery",
            "files": "_kombu.binding.celery",
            "worker.log": "(credentials) sent",
            "gunicorn.log": '"POST /register/',
            "test-process.log": "DEBUG",
        }
        report = ScanReport()
        scan_database([*never_anywhere, controls["db"]], report)
        for handler in logging.getLogger().handlers:
            handler.flush()
        # Read the keys back as a restarted server loads them from its files.
        redis_server.stop()
        redis_server.start()
        scan_redis(
            [*never_anywhere, *never_outside_db, controls["redis"]], report, redis_server.url
        )
        data_files = [p for p in redis_dir.rglob("*") if p.is_file()]
        assert any(p.suffix == ".rdb" for p in data_files), data_files
        assert any(".aof" in p.name for p in data_files), data_files
        scan_files([*never_anywhere, *never_outside_db, controls["files"]], report, data_files)
        logs = [worker.log_path, web.log_path, process_log]
        scan_logs([*never_anywhere, *never_outside_db, *list(controls.values())[3:]], report, logs)

    leaks = {s: report.where(s) for s in [*never_anywhere, *never_outside_db] if report.where(s)}
    assert leaks == {}, leaks
    assert any(w.startswith("db:tickets_ticket:") for w in report.where(controls["db"]))
    assert any(w.startswith("redis:") for w in report.where(controls["redis"]))
    assert any(w.startswith("file:") for w in report.where(controls["files"]))
    for log_name in ("worker.log", "gunicorn.log", "test-process.log"):
        assert any(w.startswith(f"log:{log_name}") for w in report.where(controls[log_name])), (
            log_name,
            report.found,
        )
    assert report.scanned["log_lines"] > 200, report.scanned
    assert os.path.getsize(worker.log_path) > 0
