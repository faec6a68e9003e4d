"""The transactional outbox: enqueue with the cause, relay after commit, deliver at least once."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.logging import bound_to_request_id
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
    transaction.on_commit(bound_to_request_id(lambda: outbox_dispatch(message_id=message.pk)))
    return message


def outbox_dispatch(*, message_id: int) -> bool:
    """Hand a message to the workers; if the broker is down the periodic sweep will retry.

    The row is marked before it is published: marked after, the UPDATE's row lock (held until
    its commit is flushed) could meet the claim of a worker that took the task at once, and
    that claim (SKIP LOCKED) would give up, leaving the e-mail to the sweep, 30-40 s later.
    """
    marked_at = timezone.now()
    marked = OutboxMessage.objects.filter(pk=message_id, dispatched_at=None).update(
        dispatched_at=marked_at
    )
    try:
        publish(name=OUTBOX_DELIVERY, item_id=message_id)
    except Exception:  # broker down or unreachable: the row stays pending, nothing is lost
        if marked:
            OutboxMessage.objects.filter(pk=message_id, dispatched_at=marked_at).update(
                dispatched_at=None
            )
        logger.warning("outbox dispatch failed for message %s; the sweep will retry", message_id)
        return False
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


def lease_owner_name() -> str:
    """This process, as written on the rows it leases (host:pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def outbox_claim(*, message_id: int) -> OutboxMessage | None:
    """Take a message for sending: a lease with a fresh fencing token, so two workers never both
    own it. PgBouncer-safe: one short transaction, no session state (docs/operations.md).

    `SELECT … FOR UPDATE SKIP LOCKED`: a worker that finds the row locked by another claimer gives
    up at once instead of queueing behind it. Returns None when the message is not claimable
    (sent, failed, or leased to a live sender) or is being claimed right now.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.GUICHET_OUTBOX_LEASE_SECONDS)
    claimable = Q(status=OutboxStatus.PENDING) | Q(status=OutboxStatus.SENDING, lease_until__lt=now)
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(claimable, pk=message_id)
            .first()
        )
        if message is None:
            return None
        message.status = OutboxStatus.SENDING
        message.lease_until = lease
        message.lease_token += 1
        message.lease_owner = lease_owner_name()
        message.attempts += 1
        message.save(
            update_fields=["status", "lease_until", "lease_token", "lease_owner", "attempts"]
        )
    return message


def outbox_is_leased(*, message_id: int) -> bool:
    """Another sender holds a live lease on the message (what a second delivery run finds)."""
    return OutboxMessage.objects.filter(
        pk=message_id, status=OutboxStatus.SENDING, lease_until__gte=timezone.now()
    ).exists()


def _own_lease(message: OutboxMessage) -> QuerySet[OutboxMessage]:
    """The message, only while it still carries the fencing token of this sender's claim."""
    return OutboxMessage.objects.filter(
        pk=message.pk, status=OutboxStatus.SENDING, lease_token=message.lease_token
    )


def outbox_lease_renew(*, message: OutboxMessage) -> bool:
    """Push the lease forward; False once the lease was lost (expired and claimed by another)."""
    lease = timezone.now() + timedelta(seconds=settings.GUICHET_OUTBOX_LEASE_SECONDS)
    renewed = _own_lease(message).update(lease_until=lease)
    if renewed:
        message.lease_until = lease
    return bool(renewed)


class LeaseKeeper:
    """Renews a message's lease from a background thread while a slow send runs.

    Every third of the lease the thread renews it (one short UPDATE on its own connection, safe
    under PgBouncer transaction pooling). `lost` is set once a renewal finds another sender's token:
    the send still finishes (SMTP cannot be taken back) but the message is never marked by it.
    If this process dies the renewals stop and the lease expires, so the sweep recovers the message.
    """

    def __init__(self, message: OutboxMessage, *, interval: float | None = None) -> None:
        self.message = message
        self.interval = interval or max(settings.GUICHET_OUTBOX_LEASE_SECONDS / 3, 0.2)
        self.lost = threading.Event()
        self.renewals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        # SQLite (unit tests, single process) has no second writer to fence off.
        if connection.vendor == "postgresql":
            self._thread = threading.Thread(
                target=self._run, name=f"outbox-lease-{self.message.pk}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop renewing (before marking the message: a renewal after it would find it done)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    renewed = outbox_lease_renew(message=self.message)
                except DatabaseError:  # database unreachable for now: try again next tick
                    logger.warning("outbox message %s: lease renewal failed", self.message.pk)
                    continue
                if not renewed:
                    logger.warning(
                        "outbox message %s lost its lease (token %s) during the send",
                        self.message.pk,
                        self.message.lease_token,
                    )
                    self.lost.set()
                    return
                self.renewals += 1
        finally:
            connections.close_all()


def outbox_mark_sent(*, message: OutboxMessage) -> None:
    """Record the mail server's acceptance, once, with a history row on the ticket."""
    with transaction.atomic():
        updated = _own_lease(message).update(
            status=OutboxStatus.SENT, sent_at=timezone.now(), lease_until=None, last_error=""
        )
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
        updated = _own_lease(message).update(
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
    "LeaseKeeper",
    "lease_owner_name",
    "outbox_claim",
    "outbox_dispatch",
    "outbox_due_ids",
    "outbox_enqueue",
    "outbox_is_leased",
    "outbox_lease_renew",
    "outbox_mark_failed",
    "outbox_mark_sent",
    "outbox_retry_delay",
]
