"""Probes: /livez (the process answers), /readyz (this node can serve), /healthz (the full picture).

docs/operations.md, "Probes": /livez for a process supervisor's restart rule, /readyz for the
load balancer, /healthz for humans and monitoring (it is 503 when the worker is down, which must
never take every web node out of a load balancer).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Written by the worker's periodic heartbeat task (workflows.tasks), read here.
HEARTBEAT_KEY = "worker-heartbeat"


@never_cache
@require_GET
def livez(request: HttpRequest) -> JsonResponse:
    """The process answers. Never looks at a dependency: restarting would not fix one."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Database, cache and limits store reachable: the node can serve a request correctly.

    Not the broker nor the worker: a request that publishes a task survives a broker outage (the
    outbox sweep republishes), and every node shares them, so failing here would empty the pool.
    """
    checks = {
        "database": _database_status(),
        "cache": _cache_status("default"),
        "limits": _cache_status("limits"),
    }
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:
        return "down"


def _cache_status(alias: str) -> str:
    try:
        store = caches[alias]
        store.get("readyz-probe")  # a read: works on a full store too
        return "ok"
    except Exception:
        return "down"


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
