"""The integration suite's broker is a production-grade Redis, so the workers check it.

The suite runs its own redis-server with AOF on a spare port (tests/suite_redis.py) instead of
a Redis without persistence, and the workers it starts keep the broker-safety check of
docs/security.md §23 on: a worker that answers here has passed that check.
"""

from __future__ import annotations

import os

import redis
from django.conf import settings

from core.checks import broker_is_safe
from tests.integration.harness import CeleryWorker


def test_the_suite_redis_is_persistent_and_never_evicts() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert os.environ["REDIS_URL"] == settings.REDIS_URL
    assert broker_is_safe() == []


def test_the_workers_start_with_the_broker_check_on(celery_worker: CeleryWorker) -> None:
    assert "DEBUG" not in celery_worker.env  # DEBUG would default the check off
    assert celery_worker.env.get("GUICHET_BROKER_CHECK_ON_WORKER_START", "1") not in ("0", "")
    assert celery_worker.is_running()
    assert "worker refuses to start" not in celery_worker.log_text()
