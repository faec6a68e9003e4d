"""Redis roles on real servers: separate databases, Sentinel, a managed Redis, a full limits store.

Each test starts its own redis-server (and sentinel) on a spare loopback port
(tests/faults/services.py); the session's shared Redis is never touched.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from django.core.cache import caches
from django.test import Client, override_settings

from core.checks import broker_is_safe
from members import throttling
from tests.factories import MemberAccountFactory, MemberFactory
from tests.faults.services import PrivateRedis, private_redis, private_sentinel

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

SCRIPT = """
from django.core.cache import cache
from members import throttling
from workflows.tasks import outbox_sweep
from desk.celery import app
app.conf.task_always_eager = False
outbox_sweep.delay()
cache.set("probe", 1)
throttling.rate_exceeded(scope="probe", value="x", limit=5)
cache.clear()
print("done")
"""


def _run_django(script: str, tmp_path: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "DATABASE_URL", "REDIS_URL", "CACHE_URL", "GUICHET_LIMITS_URL")
        and not k.startswith("CELERY_")
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        GUICHET_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="desk.settings",
        DEBUG="1",
        **env_extra,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _keys(server: PrivateRedis, db: int) -> list[bytes]:
    return list(redis_lib.Redis(port=server.port, db=db).keys("*"))


def test_a_cache_flush_keeps_queued_tasks_and_abuse_counters(tmp_path: Path) -> None:
    with private_redis() as server:
        result = _run_django(SCRIPT, tmp_path, REDIS_URL=f"redis://127.0.0.1:{server.port}/0")
        assert result.returncode == 0, result.stderr
        broker, cache_db, limits = (_keys(server, db) for db in (0, 1, 2))
    assert b"celery" in broker  # the queued task survived cache.clear() (FLUSHDB of db 1)
    assert cache_db == []
    assert any(key.startswith(b"guichet-limits:") for key in limits)


def test_broker_cache_and_limits_reach_redis_through_sentinel(tmp_path: Path) -> None:
    with private_redis() as server, private_sentinel(server, "guichet") as port:
        base = f"redis+sentinel://127.0.0.1:{port}/guichet"
        result = _run_django(
            SCRIPT.replace("cache.clear()", ""),
            tmp_path,
            REDIS_URL=base,
        )
        assert result.returncode == 0, result.stderr
        broker, cache_db, limits = (_keys(server, db) for db in (0, 1, 2))
    assert b"celery" in broker
    assert any(key.endswith(b":probe") for key in cache_db)
    assert any(key.startswith(b"guichet-limits:") for key in limits)


# --- a managed Redis that refuses CONFIG ---------------------------------------------------------

MANAGED = [
    "--appendonly",
    "yes",
    "--maxmemory-policy",
    "noeviction",
    "--rename-command",
    "CONFIG",
    "",
]


def test_broker_check_warns_when_config_get_is_refused() -> None:
    with private_redis(MANAGED) as server:
        with override_settings(GUICHET_BROKER_REDIS_URL=server.url):
            warned = [(m.id, m.is_serious()) for m in broker_is_safe()]
        with override_settings(
            GUICHET_BROKER_REDIS_URL=server.url, GUICHET_BROKER_CONFIG_CHECK="strict"
        ):
            strict = [(m.id, m.is_serious()) for m in broker_is_safe()]
    assert warned == [("guichet.W001", False)]
    assert strict == [("guichet.E006", True)]


def _worker(redis_url: str, tmp_path: Path, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL")}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        REDIS_URL=redis_url,
        GUICHET_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="desk.settings",
        GUICHET_ALLOW_UNSAFE_EMAIL="1",
        GUICHET_ALLOW_UNSAFE_LIMITS="1",
        **extra,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "desk", "worker", "-P", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _consumes(server: PrivateRedis, process: subprocess.Popen[str], timeout: float = 40) -> bool:
    deadline = time.monotonic() + timeout
    client = redis_lib.Redis(port=server.port)
    while time.monotonic() < deadline and process.poll() is None:
        if any(c.get("cmd") == "brpop" for c in client.client_list()):
            return True
        time.sleep(0.3)
    return False


def test_worker_starts_on_a_managed_redis_that_refuses_config(tmp_path: Path) -> None:
    with private_redis(MANAGED) as server:
        worker = _worker(server.url, tmp_path)
        try:
            consuming = _consumes(server, worker)
        finally:
            worker.terminate()
            output, _ = worker.communicate(timeout=30)
    assert consuming, output
    assert "guichet.W001" in output


def test_strict_broker_check_refuses_a_managed_redis(tmp_path: Path) -> None:
    with private_redis(MANAGED) as server:
        worker = _worker(server.url, tmp_path, GUICHET_BROKER_CONFIG_CHECK="strict")
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 78
    assert "guichet.E006" in output


# --- a full noeviction limits store ---------------------------------------------------------------


def _fill(server: PrivateRedis) -> None:
    client = redis_lib.Redis(port=server.port, db=2)
    blob = b"x" * 100_000
    with pytest.raises(redis_lib.exceptions.ResponseError, match="maxmemory"):
        for i in range(1000):
            client.set(f"filler:{i}", blob)


@pytest.mark.django_db
def test_a_full_noeviction_limits_store_does_not_lock_members_out() -> None:
    MemberAccountFactory(member=MemberFactory(member_number="720000001"))
    args = ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction", "--save", ""]
    with private_redis(args) as server:
        limits: dict[str, Any] = {
            "BACKEND": "core.cache.GuichetRedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/2",
            "KEY_PREFIX": "guichet-limits",
        }
        with override_settings(CACHES={"default": {**limits, "KEY_PREFIX": "c"}, "limits": limits}):
            for _ in range(3):  # three failures, counted while the store has room: 1 s delay
                Client().post("/login/", {"username": "720000001", "password": "wrong one!!"})
            _fill(server)
            assert throttling.login_blocked(portal="member", username="720000001", ip="127.0.0.1")
            time.sleep(1.1)  # the delay read from the full store still applies, then ends
            right = Client().post(
                "/login/", {"username": "720000001", "password": "a long member passphrase"}
            )
            caches["limits"].close()
    assert right.status_code == 302
