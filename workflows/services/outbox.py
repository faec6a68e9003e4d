"""The transactional outbox: enqueue with the cause, relay after commit, deliver at least once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from members.models import Account
from tickets.models import EventKind, Ticket
from tickets.services import event_record
from workflows.dispatch import publish
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.credentials import credentials_withdraw_undelivered

logger = logging.getLogger(__name__)

# The dispatch name under which the delivery task is bound (workflows.apps).
OUTBOX_DELIVERY = "outbox-delivery"


def outbox_enqueue(
    *,
    template: str,
    recipient: str,
    language: str,
    ticket: Ticket | None = None,
    account: Account | None = None,
    context: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Write an e-mail to send in the caller's transaction; dispatched once that commits."""
    message = OutboxMessage.objects.create(
        ticket=ticket,
        account=account,
        template=template,
        recipient=recipient,
        language=language,
        context=context or {},
    )
    transaction.on_commit(lambda: outbox_dispatch(message_id=message.pk))
    return message


def outbox_dispatch(*, message_id: int) -> bool:
    """Hand a message to the workers; if the broker is down the periodic sweep will retry."""
    try:
        publish(name=OUTBOX_DELIVERY, item_id=message_id)
    except Exception:  # broker down or unreachable: the row stays pending, nothing is lost
        logger.warning("outbox dispatch failed for message %s; the sweep will retry", message_id)
        return False
    OutboxMessage.objects.filter(pk=message_id, dispatched_at=None).update(
        dispatched_at=timezone.now()
    )
    return True


def outbox_due_ids(*, now: Any = None, limit: int = 500) -> list[int]:
    """Messages the sweep must re-dispatch: pending and due, or claimed by a vanished worker."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.GUICHET_OUTBOX_SWEEP_GRACE_SECONDS)
    return list(
        OutboxMessage.objects.filter(
            Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now, created_at__lte=stale)
            | Q(status=OutboxStatus.SENDING, lease_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


# First key of the two-key PostgreSQL advisory locks taken on outbox messages ("gu").
OUTBOX_LOCK_CLASS = 0x6775


@contextlib.contextmanager
def outbox_send_lock(*, message_id: int) -> Iterator[bool]:
    """Hold a session advisory lock on the message for the whole send; yields False if taken.

    The lease says how long before a silent worker is presumed dead; this lock says whether the
    sender is in fact alive: a mail server slower than the lease must not let a second worker
    claim the message and send it again (docs/security.md §22). PostgreSQL releases the lock when
    the holder's connection dies (worker killed), so crash recovery still goes through the lease.
    Needs session-level connections (no PgBouncer transaction pooling). No-op on SQLite.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = [OUTBOX_LOCK_CLASS, message_id & 0x7FFFFFFF]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def outbox_claim(*, message_id: int) -> OutboxMessage | None:
    """Take a message for sending (conditional update), so two workers never send it at once."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.GUICHET_OUTBOX_LEASE_SECONDS)
    claimable = Q(status=OutboxStatus.PENDING) | Q(status=OutboxStatus.SENDING, lease_until__lt=now)
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(claimable, pk=message_id).first()
        if message is None:
            return None
        message.status = OutboxStatus.SENDING
        message.lease_until = lease
        message.attempts += 1
        message.save(update_fields=["status", "lease_until", "attempts"])
    return message


def outbox_mark_sent(*, message: OutboxMessage) -> None:
    """Record the mail server's acceptance, once, with a history row on the ticket."""
    with transaction.atomic():
        updated = OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.SENDING, attempts=message.attempts
        ).update(status=OutboxStatus.SENT, sent_at=timezone.now(), lease_until=None, last_error="")
        if updated and message.ticket_id:
            ticket = Ticket.objects.select_for_update().get(pk=message.ticket_id)
            event_record(
                ticket=ticket,
                kind=EventKind.EMAIL,
                reason="sent",
                data=_email_event_data(message),
            )


def outbox_retry_delay(*, attempts: int) -> timedelta:
    """Exponential backoff from the configured base, capped at one hour."""
    base = settings.GUICHET_OUTBOX_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def outbox_mark_failed(*, message: OutboxMessage, error: str, permanent: bool = False) -> None:
    """Schedule a retry with exponential backoff, or give up (last attempt or permanent error)."""
    now = timezone.now()
    final = permanent or message.attempts >= settings.GUICHET_OUTBOX_MAX_ATTEMPTS
    delay = outbox_retry_delay(attempts=message.attempts)
    with transaction.atomic():
        updated = OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.SENDING, attempts=message.attempts
        ).update(
            status=OutboxStatus.FAILED if final else OutboxStatus.PENDING,
            next_attempt_at=now + delay,
            lease_until=None,
            last_error=error[:500],
        )
        withdraw = updated and final and message.template == EmailTemplate.CREDENTIALS
        if updated and final:
            logger.error("outbox message %s failed permanently: %s", message.pk, error[:200])
        if withdraw and message.account_id is not None:
            # The account's lock before the ticket's, in the order credentials_issue takes them.
            Account.objects.select_for_update().filter(pk=message.account_id).first()
        if updated and message.ticket_id:
            ticket = Ticket.objects.select_for_update().get(pk=message.ticket_id)
            event_record(
                ticket=ticket,
                kind=EventKind.EMAIL,
                reason="failed" if final else "retrying",
                body=error[:500],
                data=_email_event_data(message),
            )
        if withdraw:
            # Codes nobody received: their password stops working (docs/security.md §12).
            credentials_withdraw_undelivered(message=message)


def _email_event_data(message: OutboxMessage) -> dict[str, Any]:
    return {
        "message": message.pk,
        "template": message.template,
        "attempt": message.attempts,
        "recipient": _mask(message.recipient),
    }


def _mask(address: str) -> str:
    """Enough of an address for an agent to recognise it, not enough to harvest it from logs."""
    local, _, domain = address.partition("@")
    return f"{local[:2]}***@{domain}"


__all__ = [
    "EmailTemplate",
    "outbox_claim",
    "outbox_dispatch",
    "outbox_due_ids",
    "outbox_enqueue",
    "outbox_mark_failed",
    "outbox_mark_sent",
    "outbox_retry_delay",
    "outbox_send_lock",
]
