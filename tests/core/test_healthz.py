"""/healthz: database, broker and worker heartbeat; 200 only when all that is configured answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import DatabaseError
from django.test import Client, override_settings

from core.health import HEARTBEAT_KEY

pytestmark = pytest.mark.django_db

# A loopback port nothing listens on: connection refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def _no_heartbeat() -> Iterator[None]:
    cache.delete(HEARTBEAT_KEY)
    yield
    cache.delete(HEARTBEAT_KEY)


@override_settings(GUICHET_BROKER_REDIS_URL="")
def test_without_redis_it_is_healthy_in_process(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "in-process", "worker": "in-process"},
    }
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_a_failing_database_gives_503(client: Client) -> None:
    broken = mock.MagicMock()
    broken.cursor.side_effect = DatabaseError("connection refused")
    with mock.patch("core.health.connection", broken):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "down"
    assert "connection refused" not in response.content.decode()  # no internals leaked


def test_a_failing_query_gives_503(client: Client) -> None:
    broken = mock.MagicMock()
    broken.cursor.return_value.__enter__.return_value.execute.side_effect = DatabaseError("x")
    with mock.patch("core.health.connection", broken):
        assert client.get("/healthz").status_code == 503


@override_settings(GUICHET_BROKER_REDIS_URL=DEAD_REDIS)
def test_an_unreachable_broker_gives_503(client: Client) -> None:
    cache.set(HEARTBEAT_KEY, time.time())
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 3  # short timeouts: a probe must not hang
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "down"


@override_settings(GUICHET_BROKER_REDIS_URL=DEAD_REDIS, GUICHET_WORKER_HEARTBEAT_MAX_AGE=120)
@pytest.mark.parametrize(
    ("beat", "status", "worker"),
    [
        (lambda: time.time() - 5, 200, "ok"),
        (lambda: time.time() - 600, 503, "down"),
        (lambda: None, 503, "down"),
        (lambda: "not a timestamp", 503, "down"),
    ],
    ids=["fresh", "stale", "missing", "garbage"],
)
def test_the_worker_heartbeat_decides(
    client: Client, beat: object, status: int, worker: str
) -> None:
    value = beat()  # type: ignore[operator]
    if value is not None:
        cache.set(HEARTBEAT_KEY, value)
    with mock.patch("core.health._broker_status", return_value="ok"):
        response = client.get("/healthz")
    assert response.status_code == status
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "worker": worker}


def test_only_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
