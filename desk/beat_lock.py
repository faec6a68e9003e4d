"""One beat at a time: a Redis lock taken at beat start, renewed, lost = the process exits.

Several `celery -A desk beat` may run (one per node, for failover): the first takes the lock and
schedules; the others stand by, polling, and one takes over within GUICHET_BEAT_LOCK_SECONDS after
the holder dies. A holder that cannot renew (the lock expired, another took it) exits at once, so
two beats never schedule together for longer than one renewal interval. docs/operations.md, "Beat".
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from celery.signals import beat_init
from django.conf import settings

from core.redis_urls import redis_client

logger = logging.getLogger("guichet.beat")

LOCK_KEY = "guichet:beat-lock"
# Renew only if we still hold it (compare-and-extend); release only our own lock.
RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"  # noqa: E501
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"  # noqa: E501


@beat_init.connect
def beat_single_instance(sender: Any = None, **kwargs: Any) -> None:
    """Block until this beat holds the lock, then keep it renewed."""
    url = settings.GUICHET_BROKER_REDIS_URL
    if not url:
        return  # in-process broker (make run): nothing to share
    ttl = settings.GUICHET_BEAT_LOCK_SECONDS
    client = redis_client(url, socket_connect_timeout=2, socket_timeout=2)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    waiting = False
    while True:
        try:
            if client.set(LOCK_KEY, token, nx=True, px=ttl * 1000):
                break
        except Exception as exc:
            logger.warning("beat lock: broker unreachable (%s), retrying", type(exc).__name__)
        if not waiting:
            logger.warning("beat lock held by another beat: standing by")
            waiting = True
        time.sleep(max(0.5, ttl / 6))
    logger.warning("beat lock acquired: this beat schedules (%s)", token)
    threading.Thread(target=_keep, args=(client, token, ttl), daemon=True).start()
    atexit.register(_release, client, token)


def _keep(client: Any, token: str, ttl: int) -> None:
    renewed = time.monotonic()
    while True:
        time.sleep(ttl / 3)
        try:
            held = client.eval(RENEW, 1, LOCK_KEY, token, ttl * 1000)
        except Exception as exc:
            logger.warning("beat lock: renewal failed (%s)", type(exc).__name__)
            held = None
        if held:
            renewed = time.monotonic()
        elif held == 0 or time.monotonic() - renewed >= ttl:
            logger.critical("beat lock lost: exiting so that two beats never schedule together")
            os._exit(75)


def _release(client: Any, token: str) -> None:
    try:
        client.eval(RELEASE, 1, LOCK_KEY, token)
    except Exception:  # the lock expires by itself
        logger.info("beat lock not released (broker unreachable); it expires in its TTL")
