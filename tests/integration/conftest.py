"""Integration harness: PostgreSQL, Redis, a real Celery worker, an SMTP sink, the app over HTTP.

Every test under tests/integration is marked `integration`, runs against a transactional test
database (the worker is another process and must see committed rows; content types, permissions
and the staff groups are put back before each test), and skips with a reason unless DATABASE_URL is
PostgreSQL and REDIS_URL is set — under CI=true it fails instead.

Fixtures, from the bottom up:
- `smtp_sink`: an aiosmtpd server on 127.0.0.1 collecting parsed e-mails (`wait_for`, `text_part`).
- `celery_worker`: one real `celery -A desk worker --pool=prefork --concurrency=1 -B` per test
  module, on the test database, Redis and the sink; `celery_worker_factory` starts private ones.
- `process_log`: this process's log records (the live server runs here) at DEBUG, in a file.
- `live_app`: the app over real HTTP (pytest-django's live server) and browser-like clients.
- `secrets_scan`: where given secrets appear in the database, Redis and both logs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.factories import ensure_staff_groups
from tests.integration.harness import (
    CeleryWorker,
    HttpClient,
    PgBouncer,
    ScanReport,
    SmtpSink,
    redis_flush,
    require_services,
    worker_env,
)
from tests.integration.harness import (
    secrets_scan as scan,
)

INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/integration as `integration`."""
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def integration_services_gate() -> None:
    """Skip every test here (fail under CI=true) unless DATABASE_URL is PostgreSQL, REDIS_URL set.

    Session-scoped and autouse so it runs before any other session fixture starts a process.
    """
    require_services()


@pytest.fixture(autouse=True)
def integration_db(transactional_db: None) -> None:
    """Committed transactions (other processes see the rows), with the staff groups in place.

    A transactional test ends with a flush that also empties what the data migration made (and,
    after a serialized-rollback test, the content types and permissions too), so they are put back
    before each test. No serialized rollback here: its restore collides with the content types a
    plain transactional test's flush re-creates (browser tests, tests/tickets/test_claim_race.py).
    """
    ensure_staff_groups()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Overrides tests/conftest.py's `cache.clear()`: with Redis that is FLUSHDB, which would wipe
    the broker's queues and bindings under the running worker. Only the cache's own keys go (the
    worker heartbeat stays), so every test still starts with no abuse-limit counter spent."""
    from django.conf import settings

    from core.redis_urls import redis_client

    for alias in ("default", "limits"):
        config = settings.CACHES[alias]
        if not str(config["BACKEND"]).endswith("RedisCache"):
            continue
        prefix = config.get("KEY_PREFIX", "")
        client = redis_client(str(config["LOCATION"]))
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            if not key.endswith(b":worker-heartbeat"):
                client.delete(key)


@pytest.fixture(autouse=True)
def tasks_to_broker() -> Iterator[None]:
    """Tasks the web side queues go to the real Redis broker, never run in-process, so the real
    worker is what sends every e-mail (unit tests run them eagerly: see tests/conftest.py)."""
    from desk.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    assert app.conf.broker_url == os.environ["REDIS_URL"]
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def real_password_hashers(settings: Any) -> None:
    """The production hasher list (Argon2id first) instead of the unit tests' fast MD5."""
    from desk import settings as production

    settings.PASSWORD_HASHERS = production.PASSWORD_HASHERS


@pytest.fixture(scope="session")
def integration_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for this session's logs, beat schedule and var/ files."""
    return tmp_path_factory.mktemp("integration")


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    """The session's SMTP sink (aiosmtpd `Controller` on 127.0.0.1, free port); see `smtp_sink`."""
    require_services()
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink(smtp_server: SmtpSink) -> SmtpSink:
    """The SMTP sink, emptied for this test.

    `smtp_sink.messages` holds parsed `email.message.EmailMessage` objects; `wait_for(predicate,
    timeout)` polls until one matches and returns it; `messages_to(address)`; read the plain-text
    part with `tests.integration.harness.text_part(message)` (or `html_part`).
    """
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="session")
def process_log(integration_tmp: Path) -> Iterator[Path]:
    """This process's log records at DEBUG (the live server's requests included), in a file.

    The SMTP sink's own logger (aiosmtpd's `mail.log`, which logs whole messages) is left out.
    """
    path = integration_tmp / "test-process.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # aiosmtpd ("mail.log") is the member's mail server, not Guichet: it logs whole messages.
    handler.addFilter(lambda record: not record.name.startswith("mail.log"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(previous_level)
    handler.close()


def start_worker(
    name: str,
    *,
    smtp_server: SmtpSink,
    directory: Path,
    beat: bool = True,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    bouncer: PgBouncer | None = None,
) -> CeleryWorker:
    """Start a real worker on the *test* database (`settings.DATABASES` after pytest-django's
    setup), REDIS_URL and the sink; stdout and stderr go to `<directory>/<name>/<name>.log`.
    With `bouncer`, the worker reaches the database through that PgBouncer."""
    from django.conf import settings

    home = directory / name
    home.mkdir(parents=True, exist_ok=True)
    database = settings.DATABASES["default"]
    if bouncer is not None:
        database = bouncer.database_settings(database)
    worker = CeleryWorker(
        env={
            **worker_env(
                database_settings=database,
                email_url=smtp_server.url,
                var_dir=home,
            ),
            **(env or {}),
        },
        log_path=home / f"{name}.log",
        hostname=f"{name}-{os.getpid()}@guichet-tests",
        beat=beat,
        extra_args=extra_args,
    )
    try:
        return worker.start()
    except BaseException:
        worker.stop()
        raise


@pytest.fixture
def celery_worker_factory(
    django_db_setup: None, smtp_server: SmtpSink, integration_tmp: Path
) -> Iterator[Callable[..., CeleryWorker]]:
    """Start private real workers for one test: `factory("w2", beat=False, env={"X": "1"})`
    (`bouncer=pgbouncer_server` to reach the database through PgBouncer).

    Each is a `CeleryWorker` like `celery_worker` (same database, Redis and sink) with env
    overrides; fault tests may `kill()`, `stop()` and start them again. Every worker this factory
    started is stopped when the test ends (SIGTERM, then SIGKILL of its process group). Redis is
    not flushed here; the module's shared worker, if started, keeps consuming unless paused.
    """
    workers: list[CeleryWorker] = []

    def start(
        name: str = "worker",
        *,
        beat: bool = True,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        bouncer: PgBouncer | None = None,
    ) -> CeleryWorker:
        worker = start_worker(
            name,
            smtp_server=smtp_server,
            directory=integration_tmp,
            beat=beat,
            env=env,
            extra_args=extra_args,
            bouncer=bouncer,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="module")
def celery_worker(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    smtp_server: SmtpSink,
    integration_tmp: Path,
) -> Iterator[CeleryWorker]:
    """The module's real worker: `celery -A desk worker --pool=prefork --concurrency=1 -B`.

    One per test module (about 2 s to start), so no worker outlives the integration tests and
    polls the database under the rest of the suite; its log is `<tmp>/worker-<module>/...log`.

    Production settings (`desk.settings`, Argon2id), the test database, REDIS_URL, the SMTP sink,
    LOG_LEVEL=DEBUG, outbox sweep every 2 s. Ready once it answers a control ping. The Redis db of
    REDIS_URL is flushed before it starts and after it stops. Also proves that this process
    publishes to the real broker (not eagerly), so web requests reach this worker.
    `log_path` / `log_text()` / `wait_for_log(pattern)` read its output; `pause()` / `resume()`
    stop and restart consumption so messages can be caught waiting in Redis.
    """
    from desk.celery import app

    redis_url = os.environ["REDIS_URL"]
    assert app.conf.broker_url == redis_url, "the test process would not publish to REDIS_URL"
    redis_flush(redis_url)
    name = "worker-" + request.module.__name__.rsplit(".", 1)[-1]
    worker = start_worker(name, smtp_server=smtp_server, directory=integration_tmp)
    yield worker
    worker.stop()
    redis_flush(redis_url)


@dataclass
class LiveApp:
    """The app served over real HTTP; `client()` gives a fresh browser-like session."""

    url: str

    def client(self, language: str = "fr") -> HttpClient:
        """A new client with its own cookie jar, sending `Accept-Language: <language>`."""
        return HttpClient(self.url, language=language)


@pytest.fixture
def live_app(live_server: Any) -> LiveApp:
    """The app over real HTTP: pytest-django's live server (same test database, threads).

    Clients keep cookies (Secure `__Host-` ones too, as browsers do on localhost), take the CSRF
    token from the page's form and send Origin/Referer: `client.submit(page, data, action=...)`.
    Web requests publish to the real Redis broker (see `celery_worker`).
    """
    return LiveApp(url=live_server.url)


@pytest.fixture
def secrets_scan(celery_worker: CeleryWorker, process_log: Path) -> Callable[..., ScanReport]:
    """`secrets_scan(["s1", "s2"])` → `ScanReport`: `.found` maps each secret found to locations.

    Looks in every row of every table of the test database (COPY ... TO STDOUT), every key and
    value of the Redis db (type-aware, Celery message bodies base64-decoded, plus DUMP), the
    worker's log and this process's log; `.scanned` counts what was read.
    """

    def run(secrets: list[str], *, extra_logs: tuple[Path, ...] = ()) -> ScanReport:
        for handler in logging.getLogger().handlers:
            handler.flush()
        return scan(
            secrets,
            redis_url=os.environ["REDIS_URL"],
            log_paths=(celery_worker.log_path, process_log, *extra_logs),
        )

    return run
