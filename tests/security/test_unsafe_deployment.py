"""With DEBUG off, a lab's configuration is refused: check --deploy, the web and the worker.

E-mail to files or the console (temporary passwords in clear under var/mail/), no broker (SMTP
inside the request), per-process limits (each limit multiplied by the number of processes); each
has an explicit GUICHET_ALLOW_UNSAFE_* override, logged.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from core.checks import deployment_is_safe

ROOT = Path(__file__).resolve().parents[2]
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
REDIS = {"BACKEND": "core.cache.GuichetRedisCache", "LOCATION": "redis://127.0.0.1:1/2"}
SAFE = {
    "DEBUG": False,
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "GUICHET_BROKER_REDIS_URL": "redis://127.0.0.1:1/0",
    "CACHES": {"default": LOCMEM, "limits": REDIS},
}


def _ids(**changes: object) -> list[str]:
    with override_settings(**{**SAFE, **changes}):
        return [m.id or "" for m in deployment_is_safe()]


def test_a_production_configuration_is_accepted() -> None:
    assert _ids() == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.console.EmailBackend",
    ],
)
def test_email_to_files_or_the_console_is_refused(backend: str) -> None:
    assert _ids(EMAIL_BACKEND=backend) == ["guichet.E010"]


def test_an_in_process_broker_is_refused() -> None:
    assert _ids(GUICHET_BROKER_REDIS_URL="") == ["guichet.E011"]


def test_per_process_limits_are_refused() -> None:
    assert _ids(CACHES={"default": LOCMEM, "limits": LOCMEM}) == ["guichet.E012"]


@pytest.mark.parametrize(
    ("override", "change", "warning"),
    [
        (
            "GUICHET_ALLOW_UNSAFE_EMAIL",
            {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"},
            "guichet.W010",
        ),
        ("GUICHET_ALLOW_UNSAFE_BROKER", {"GUICHET_BROKER_REDIS_URL": ""}, "guichet.W011"),
        (
            "GUICHET_ALLOW_UNSAFE_LIMITS",
            {"CACHES": {"default": LOCMEM, "limits": LOCMEM}},
            "guichet.W012",
        ),
    ],
)
def test_each_refusal_has_an_explicit_override_that_still_warns(
    override: str, change: dict[str, object], warning: str
) -> None:
    assert _ids(**change, **{override: True}) == [warning]


def test_debug_mode_is_a_lab_by_definition() -> None:
    assert _ids(DEBUG=True, EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend") == []


# --- real processes ---------------------------------------------------------------------------


def _lab_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """DEBUG off and nothing else: file e-mail, no broker, per-process limits."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DEBUG", "GUICHET_", "CELERY_"))
        and k not in ("REDIS_URL", "CACHE_URL", "EMAIL_URL", "DATABASE_URL")
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        GUICHET_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="desk.settings",
        **extra,
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_fails_on_each_refusal(tmp_path: Path) -> None:
    result = _run(["manage.py", "check", "--deploy"], _lab_env(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for check_id in ("guichet.E010", "guichet.E011", "guichet.E012"):
        assert check_id in output


def test_the_web_process_refuses_to_start_and_the_overrides_let_a_lab_start(
    tmp_path: Path,
) -> None:
    refused = _run(["-c", "import desk.wsgi"], _lab_env(tmp_path))
    allowed = _run(
        ["-c", "import desk.wsgi"],
        _lab_env(
            tmp_path,
            GUICHET_ALLOW_UNSAFE_EMAIL="1",
            GUICHET_ALLOW_UNSAFE_BROKER="1",
            GUICHET_ALLOW_UNSAFE_LIMITS="1",
        ),
    )
    assert refused.returncode == 78
    assert "web refuses to start" in refused.stderr and "guichet.E010" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert "unsafe configuration allowed by GUICHET_ALLOW_UNSAFE_EMAIL" in allowed.stderr


@pytest.mark.integration
def test_the_worker_refuses_to_start_with_email_to_files(tmp_path: Path) -> None:
    from tests.faults.services import private_redis

    with private_redis() as redis:
        result = _run(
            ["-m", "celery", "-A", "desk", "worker", "-P", "solo", "-l", "warning"],
            _lab_env(tmp_path, REDIS_URL=redis.url),
        )
    assert result.returncode == 78
    assert "guichet.E010" in result.stdout + result.stderr
