"""/livez answers whatever the dependencies; /readyz is 503 when the database or a cache is down."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import DatabaseError
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

DEAD = {"BACKEND": "core.cache.GuichetRedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def _dead_database() -> mock.MagicMock:
    broken = mock.MagicMock()
    broken.cursor.side_effect = DatabaseError("connection refused")
    return broken


def test_livez_answers_even_with_the_database_cache_and_broker_down(client: Client) -> None:
    with (
        mock.patch("core.health.connection", _dead_database()),
        override_settings(
            CACHES={"default": DEAD, "limits": DEAD},
            GUICHET_BROKER_REDIS_URL="redis://127.0.0.1:1/0",
        ),
    ):
        response = client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_and_caches_answer(client: Client) -> None:
    with override_settings(CACHES={"default": LOCMEM, "limits": LOCMEM}):
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "limits": "ok"},
    }


def test_readyz_ignores_a_dead_worker_and_broker(client: Client) -> None:
    with override_settings(
        CACHES={"default": LOCMEM, "limits": LOCMEM},
        GUICHET_BROKER_REDIS_URL="redis://127.0.0.1:1/0",
    ):
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 503  # the full picture still tells


def test_readyz_is_503_when_the_database_is_down(client: Client) -> None:
    with mock.patch("core.health.connection", _dead_database()):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "down"


@pytest.mark.parametrize("alias", ["default", "limits"])
def test_readyz_is_503_when_a_cache_is_unreachable(client: Client, alias: str) -> None:
    caches_config = {"default": LOCMEM, "limits": LOCMEM, alias: DEAD}
    with override_settings(CACHES=caches_config):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache" if alias == "default" else "limits"] == "down"
