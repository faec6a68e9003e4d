"""Health: what the worker heartbeat is called, and the /healthz view that reads it."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Written by the worker's periodic heartbeat task (workflows.tasks), read here.
HEARTBEAT_KEY = "worker-heartbeat"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker heartbeat; 200 only when everything configured answers."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "down"
    if settings.GUICHET_BROKER_REDIS_URL:
        checks["broker"] = _broker_status()
        try:
            age = time.time() - float(_cache_get(HEARTBEAT_KEY))  # type: ignore[arg-type]
        except (TypeError, ValueError):  # missing, or not written by our heartbeat task
            age = float("inf")
        checks["worker"] = "ok" if age < settings.GUICHET_WORKER_HEARTBEAT_MAX_AGE else "down"
    else:
        checks["broker"] = "in-process"
        checks["worker"] = "in-process"
    healthy = all(v in ("ok", "in-process") for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


def _broker_status() -> str:
    from core.redis_urls import redis_client

    try:
        client = redis_client(
            settings.GUICHET_BROKER_REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        return "ok" if client.ping() else "down"
    except Exception:
        return "down"


def _cache_get(key: str) -> object:
    try:
        return cache.get(key)
    except Exception:
        return None
