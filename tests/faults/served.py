"""The whole stack pointed at a private Redis: gunicorn serving the app and a Celery worker.

Fault tests stop that Redis under them; the session's shared Redis (REDIS_URL) is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.faults.services import SAFE_REDIS_ARGS, PrivateRedis, require_binary, wait_port
from tests.integration.harness import REPO_ROOT, CeleryWorker, database_url, free_port

PRIVATE_REDIS_PORTS = range(6390, 6400)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spare_redis_port() -> int:
    """A port of the private range 6390-6399 nobody uses now (else any free port)."""
    for port in PRIVATE_REDIS_PORTS:
        if _port_is_free(port):
            return port
    return free_port()


@contextlib.contextmanager
def private_redis_server(
    directory: Path | None = None, extra_args: tuple[str, ...] = ()
) -> Iterator[PrivateRedis]:
    """A persistent, noeviction redis-server of our own on a spare private port."""
    require_binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="guichet-redis-") as scratch:
        server = PrivateRedis(
            port=spare_redis_port(),
            directory=directory or Path(scratch),
            args=[*SAFE_REDIS_ARGS, *extra_args],
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


class PrivateBrokerWorker(CeleryWorker):
    """A `CeleryWorker` whose broker is not the test process's: pinged through its own app."""

    def __init__(self, *, broker_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.broker_url = broker_url

    def wait_ready(self, timeout: float = 60.0) -> None:
        from celery import Celery

        # Not the current app: shared tasks published later in this process keep desk's broker.
        probe = Celery("probe", broker=self.broker_url, set_as_current=False)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.is_running():
                    raise RuntimeError(f"celery worker exited early:\n{self.log_tail()}")
                if probe.control.ping(destination=[self.hostname], timeout=0.5):
                    return
            raise RuntimeError(f"worker not ready after {timeout:.0f} s:\n{self.log_tail()}")
        finally:
            probe.close()


def stack_env(
    *, redis_url: str, email_url: str, var_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment of a gunicorn or worker on the test database, `redis_url` and the sink."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "PYTEST_ADDOPTS")}
    env.update(
        DJANGO_SETTINGS_MODULE="desk.settings_loopback",
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        REDIS_URL=redis_url,
        EMAIL_URL=email_url,
        SECRET_KEY=settings.SECRET_KEY,
        LOG_LEVEL="DEBUG",
        GUICHET_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


class Gunicorn:
    """`gunicorn desk.wsgi` on a free loopback port, its output in a log file."""

    def __init__(
        self, *, env: Mapping[str, str], log_path: Path, workers: int = 2, threads: int = 1
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Gunicorn:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "desk.wsgi",
                f"--bind=127.0.0.1:{self.port}",
                f"--workers={self.workers}",
                f"--threads={self.threads}",
                "--timeout=60",
                "--access-logfile=-",
                "--log-level=debug",
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_port(self.port, timeout=timeout)
        except TimeoutError as exc:
            self.stop()
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"gunicorn did not start:\n{tail}") from exc
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
