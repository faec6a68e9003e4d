"""The test suite's own Redis: a private redis-server with AOF persistence on a spare port.

Loaded before Django (`-p tests.suite_redis` in pyproject's pytest addopts). When REDIS_URL is set
(the integration tests are on), the session starts a redis-server of its own — AOF on,
`noeviction`, loopback only, in a temporary directory — points REDIS_URL at it for this process
and every process it starts (Celery workers, gunicorn), and stops it when the session ends. So
the broker is as production wants it and the workers' broker-safety check (docs/security.md §23)
stays on in CI, instead of being turned off for a Redis without persistence.

`GUICHET_TEST_REDIS=given` keeps the REDIS_URL you gave (it must then be persistent and
`noeviction`, or the workers refuse to start); `GUICHET_TEST_REDIS_PORT` picks the port
(default: any free one). The REDIS_URL given is kept in GUICHET_TEST_REDIS_GIVEN_URL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

# A broker as docs/security.md §23 wants it: persistent (AOF) and never evicting a queued task.
SUITE_REDIS_ARGS = ("--appendonly", "yes", "--maxmemory-policy", "noeviction")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the suite's redis-server does not listen on 127.0.0.1:{port}")


class SuiteRedis:
    """The session's redis-server process and its scratch directory."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.directory = Path(tempfile.mkdtemp(prefix="guichet-suite-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise pytest.UsageError(
                "REDIS_URL is set but redis-server is not installed: the suite runs its own "
                "Redis (tests/suite_redis.py); install it or set GUICHET_TEST_REDIS=given"
            )
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
             "--dir", str(self.directory), "--save", "", *SUITE_REDIS_ARGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        _wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


_SERVER: SuiteRedis | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before pytest-django sets Django up (it reads REDIS_URL through the settings)."""
    global _SERVER
    given = os.environ.get("REDIS_URL", "")
    if not given or os.environ.get("GUICHET_TEST_REDIS", "") == "given" or _SERVER is not None:
        return
    port = int(os.environ.get("GUICHET_TEST_REDIS_PORT", "") or _free_port())
    server = SuiteRedis(port)
    server.start()
    _SERVER = server
    os.environ["GUICHET_TEST_REDIS_GIVEN_URL"] = given
    os.environ["REDIS_URL"] = server.url


def pytest_report_header() -> str | None:
    if _SERVER is None:
        return None
    return f"suite Redis: {_SERVER.url} (AOF, noeviction; tests/suite_redis.py)"


def pytest_unconfigure(config: pytest.Config) -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None
