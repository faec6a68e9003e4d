"""Two beats on one broker: one schedules, the other stands by and takes over when it dies.

Its schedule file lands under GUICHET_VAR_DIR, never in the working directory.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.services import private_redis

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _beat(redis_url: str, var_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(
        DEBUG="1",
        LOG_FORMAT="text",
        SECRET_KEY=secrets.token_urlsafe(50),
        REDIS_URL=redis_url,
        GUICHET_VAR_DIR=str(var_dir),
        GUICHET_BEAT_LOCK_SECONDS="3",
        DJANGO_SETTINGS_MODULE="desk.settings",
    )
    var_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "desk", "beat", "-l", "info"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(path: Path, text: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_one_beat_schedules_the_other_stands_by_then_takes_over(tmp_path: Path) -> None:
    logs = [tmp_path / "beat-1.log", tmp_path / "beat-2.log"]
    with private_redis() as redis:
        first = _beat(redis.url, tmp_path / "var-1", logs[0])
        second = None
        try:
            assert _wait_for(logs[0], "beat lock acquired"), logs[0].read_text()
            second = _beat(redis.url, tmp_path / "var-2", logs[1])
            assert _wait_for(logs[1], "standing by"), logs[1].read_text()
            time.sleep(4)  # more than one lock TTL: the holder renews, the standby keeps waiting
            assert "beat lock acquired" not in logs[1].read_text()
            first.kill()  # no release: the standby must wait for the TTL
            first.wait(timeout=10)
            assert _wait_for(logs[1], "beat lock acquired", timeout=15), logs[1].read_text()
            assert second.poll() is None
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(timeout=15)
    assert list((tmp_path / "var-1").glob("celerybeat-schedule*"))
    assert not list(ROOT.glob("celerybeat-schedule*"))
