"""Celery tasks: ids in, one service call, safe to run twice."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings
from django.core.cache import cache

from core.checks import broker_is_safe, unsafe_start_refusals
from core.health import HEARTBEAT_KEY
from workflows.services.accounts import email_changes_apply_due
from workflows.services.decisions import tickets_expire_stale
from workflows.services.delivery import outbox_deliver
from workflows.services.intake import intake_traces_purge
from workflows.services.outbox import outbox_dispatch, outbox_due_ids
from workflows.services.retention import retention_purge
from workflows.services.submissions import form_submissions_purge
from workflows.services.webhooks import webhook_deliver, webhook_dispatch, webhook_due_ids

logger = logging.getLogger(__name__)


@worker_init.connect
def broker_check_on_worker_start(**kwargs: Any) -> None:
    """Refuse to start a worker on an unsafe Redis (docs/security.md §23), or with e-mail to files,
    per-process limits (core.checks.deployment_is_safe); both off with DEBUG."""
    refused = unsafe_start_refusals()
    if getattr(settings, "GUICHET_BROKER_CHECK_ON_WORKER_START", not settings.DEBUG):
        messages = broker_is_safe()
        for warning in messages:
            if not warning.is_serious():
                logger.warning(
                    "broker check: %s: %s %s", warning.id, warning.msg, warning.hint or ""
                )
        refused += [f"{m.id}: {m.msg}" for m in messages if m.is_serious()]
    if refused:
        # Celery logs and swallows exceptions raised by signal handlers: exit instead (EX_CONFIG).
        logger.critical("worker refuses to start: %s", "; ".join(refused))
        raise SystemExit(78)


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
    return tickets_expire_stale()


@shared_task(ignore_result=True)
def form_tokens_purge() -> int:
    """Forget the one-time tokens of public forms submitted more than two days ago."""
    return form_submissions_purge()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> str:
    """POST one webhook delivery (the claim makes a redelivery harmless)."""
    return webhook_deliver(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def webhook_sweep() -> int:
    """Dispatch webhook deliveries that are due (retries, broker was down, worker died)."""
    ids = webhook_due_ids()
    for delivery_id in ids:
        webhook_dispatch(delivery_id=delivery_id)
    return len(ids)


@shared_task(ignore_result=True)
def intake_traces_purge_task() -> int:
    """Forget the intake traces older than the longest signal window (workflows/risk.py)."""
    return intake_traces_purge()


@shared_task(ignore_result=True)
def retention_daily_purge() -> dict[str, int]:
    """The daily retention purge: outbox addresses, sessions, e-mail changes, form tokens."""
    return retention_purge()


@shared_task(ignore_result=True)
def email_changes_apply() -> int:
    """Apply the pending e-mail changes whose waiting time is over (each at most once)."""
    return email_changes_apply_due()
