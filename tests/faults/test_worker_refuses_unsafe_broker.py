"""docs/security.md §23: a worker does not start consuming from a Redis that could lose messages."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.services import private_redis

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(redis_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL")}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        REDIS_URL=redis_url,
        GUICHET_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="desk.settings",
    )
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "desk", "worker", "-P", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.integration
def test_worker_exits_at_start_on_an_evicting_redis(tmp_path: Path) -> None:
    with private_redis(["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"]) as redis:
        result = _start_worker(redis.url, tmp_path)
        # It never reached the queue: no consumer registered on the broker.
        clients = redis.cli("CLIENT", "LIST")
    assert result.returncode != 0
    assert "guichet.E003" in result.stdout + result.stderr
    assert "cmd=brpop" not in clients


@pytest.mark.integration
def test_worker_exits_at_start_on_a_redis_without_persistence(tmp_path: Path) -> None:
    with private_redis(["--appendonly", "no", "--save", ""]) as redis:
        result = _start_worker(redis.url, tmp_path)
    assert result.returncode != 0
    assert "guichet.E004" in result.stdout + result.stderr
