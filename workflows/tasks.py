"""Celery tasks: ids in, one service call, safe to run twice."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache

from workflows.services.delivery import outbox_deliver
from workflows.services.outbox import outbox_dispatch, outbox_due_ids

HEARTBEAT_KEY = "worker-heartbeat"


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def outbox_deliver_task(message_id: int) -> str:
    """Deliver one outbox message (claim makes redelivery harmless)."""
    return outbox_deliver(message_id=message_id)


@shared_task(ignore_result=True)
def outbox_sweep() -> int:
    """Re-dispatch messages left behind (broker was down, worker died)."""
    ids = outbox_due_ids()
    for message_id in ids:
        outbox_dispatch(message_id=message_id)
    return len(ids)


@shared_task(ignore_result=True)
def worker_heartbeat() -> float:
    """Prove to /healthz that a worker consumes the queue."""
    now = time.time()
    cache.set(HEARTBEAT_KEY, now, timeout=600)
    return now


@shared_task(ignore_result=True)
def tickets_expire() -> int:
    """Reject requests left without a decision past the configured number of days."""
    from workflows.services.decisions import tickets_expire_stale

    return tickets_expire_stale()
