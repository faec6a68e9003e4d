"""docs/security.md §32, §23: production settings pass Django's deploy checks; headers, errors."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from core.checks import broker_is_safe
from tests.faults.services import private_redis
from tests.second_factor import staff_login

ROOT = Path(__file__).resolve().parents[2]


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("internal detail: /srv/guichet/secret_path.py line 42")


urlpatterns = [path("boom/", _boom), path("", include("desk.urls"))]


def _production_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="guichet.example.org",
        CSRF_TRUSTED_ORIGINS="https://guichet.example.org",
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="desk.settings",
        EMAIL_URL="smtp://127.0.0.1:2525",
    )
    return env


@pytest.mark.integration
def test_check_deploy_passes_with_production_environment() -> None:
    with private_redis() as redis:
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env=_production_env(redis.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.integration
def test_check_deploy_fails_when_the_broker_may_evict() -> None:
    with private_redis(["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"]) as redis:
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env=_production_env(redis.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert "guichet.E003" in result.stdout + result.stderr


def _broker_errors(redis_url: str, **extra: object) -> list[str]:
    with override_settings(GUICHET_BROKER_REDIS_URL=redis_url, **extra):
        return [e.id for e in broker_is_safe() if isinstance(e, Error)]


@pytest.mark.integration
def test_broker_check_accepts_noeviction_with_append_only_file() -> None:
    with private_redis() as redis:
        assert _broker_errors(redis.url) == []


@pytest.mark.integration
def test_broker_check_accepts_rdb_save_points_as_persistence() -> None:
    with private_redis(["--appendonly", "no", "--save", "60 1"]) as redis:
        assert _broker_errors(redis.url) == []


@pytest.mark.integration
def test_broker_check_refuses_an_evicting_redis() -> None:
    with private_redis(["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"]) as redis:
        assert _broker_errors(redis.url) == ["guichet.E003"]


@pytest.mark.integration
def test_broker_check_refuses_a_redis_without_persistence() -> None:
    with private_redis(["--appendonly", "no", "--save", ""]) as redis:
        assert _broker_errors(redis.url) == ["guichet.E004"]


@pytest.mark.integration
def test_broker_check_refuses_a_visibility_timeout_below_the_task_limit() -> None:
    with private_redis() as redis:
        errors = _broker_errors(
            redis.url,
            CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 60},
            CELERY_TASK_TIME_LIMIT=300,
        )
    assert errors == ["guichet.E002"]


@pytest.mark.integration
def test_broker_check_refuses_a_redis_that_does_not_answer() -> None:
    with private_redis() as redis:
        url = redis.url
    assert _broker_errors(url) == ["guichet.E001"]


def test_broker_check_is_silent_without_redis() -> None:
    with override_settings(GUICHET_BROKER_REDIS_URL=""):
        assert broker_is_safe() == []


# --- headers on real responses ------------------------------------------------------------


@pytest.mark.django_db
def test_pages_carry_hsts_csp_nosniff_and_referrer_policy() -> None:
    response = Client().get("/register/", secure=True)
    assert response.status_code == 200
    hsts = response.headers["Strict-Transport-Security"]
    age = int(re.search(r"max-age=(\d+)", hsts).group(1))  # type: ignore[union-attr]
    assert age >= 31536000
    assert "includeSubDomains" in hsts
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Server" not in response.headers


@pytest.mark.django_db
def test_cookies_are_host_prefixed_secure_httponly_and_samesite(member_account: object) -> None:
    client = Client()
    page = client.get("/login/", secure=True)
    csrf = page.cookies["__Host-csrftoken"]
    response = client.post(
        "/login/",
        {"username": member_account.username, "password": "a long member passphrase"},  # type: ignore[attr-defined]
        secure=True,
    )
    assert response.status_code == 302
    session = response.cookies["__Host-sessionid"]
    for cookie in (csrf, session):
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert cookie["path"] == "/"
        assert not cookie["domain"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/account/", "/desk/", "/register/", "/requests/REG-00000000/"])
def test_pages_that_may_show_personal_data_are_not_stored(
    url: str, member_account: object, agent: object
) -> None:
    client = Client()
    staff_login(client, agent if url.startswith("/desk/") else member_account)  # type: ignore[arg-type]
    response = client.get(url, secure=True)
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_not_found_page_is_generic() -> None:
    response = Client().get("/no/such/page/", secure=True)
    assert response.status_code == 404
    body = response.content.decode()
    assert "Traceback" not in body
    assert "urlpatterns" not in body.lower()
    assert "Django" not in body
    assert "Server" not in response.headers


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_server_error_page_is_generic_without_internals() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/boom/", secure=True)
    assert response.status_code == 500
    body = response.content.decode()
    assert "Traceback" not in body
    assert "secret_path" not in body
    assert "RuntimeError" not in body
    assert "Django" not in body
    assert "no-store" in response.headers["Cache-Control"]
