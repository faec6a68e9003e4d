"""Retention: what Guichet forgets, and when (docs/operations.md, "Retention").

One daily purge (beat `retention-purge`, or `manage.py purge_retention`):
- outbox rows older than `GUICHET_OUTBOX_RETENTION_DAYS` that are done (sent or failed) lose
  their recipient address and template context; the row, its status, template, ticket and
  timestamps stay (the supervisors' promise figures and the ticket's history still add up);
- expired sessions are deleted (what `clearsessions` does);
- e-mail change requests applied, superseded or expired more than
  `GUICHET_EMAIL_CHANGE_RETENTION_DAYS` ago are deleted;
- public form tokens older than their two-day lifetime are deleted;
- access journal rows older than `GUICHET_ACCESS_JOURNAL_DAYS` are deleted (the only deletion
  the journal's trigger lets through, `members.services.access_journal`).

Each step works in batches of `GUICHET_RETENTION_BATCH` rows, each its own short transaction
(keyed on the primary key): memory stays flat and no lock is held across batches, so the desk
keeps working during a large purge. The ticket history is never purged here (append-only and
hash-chained; its policy is in docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from members.models import EmailChangeRequest
from members.services.access_journal import (
    access_journal_expired_ids,
    access_journal_purge_batch,
)
from workflows.models import OutboxMessage, OutboxStatus
from workflows.services.submissions import form_submissions_purge

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Model)

# What a redacted outbox row carries instead of the address (an EmailField, never a real one).
REDACTED_RECIPIENT = ""


def _in_batches(queryset: QuerySet[M], step: Callable[[QuerySet[M]], int]) -> int:
    """Apply `step` to the matching rows, `GUICHET_RETENTION_BATCH` primary keys at a time."""
    size = settings.GUICHET_RETENTION_BATCH
    done = 0
    last = 0
    while True:
        ids = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return done
        with transaction.atomic():
            # The condition again: a row changed since the id was read is left alone.
            done += step(queryset.filter(pk__in=ids))
        last = ids[-1]


def outbox_recipients_redact(*, now: dt.datetime) -> int:
    """Drop recipient addresses and context of done messages older than the retention period."""
    cutoff = now - dt.timedelta(days=settings.GUICHET_OUTBOX_RETENTION_DAYS)
    done = OutboxMessage.objects.filter(
        status__in=[OutboxStatus.SENT, OutboxStatus.FAILED], created_at__lt=cutoff
    ).exclude(recipient=REDACTED_RECIPIENT, context={})
    return _in_batches(
        done,
        lambda rows: rows.update(recipient=REDACTED_RECIPIENT, context={}),
    )


def sessions_expired_purge(*, now: dt.datetime) -> int:
    """Delete sessions past their expiry date (what `clearsessions` does, in batches)."""
    return _in_batches(
        Session.objects.filter(expire_date__lt=now),
        lambda rows: rows.delete()[0],
    )


def email_changes_purge(*, now: dt.datetime) -> int:
    """Delete e-mail change requests used (applied or superseded) or expired long enough ago."""
    cutoff = now - dt.timedelta(days=settings.GUICHET_EMAIL_CHANGE_RETENTION_DAYS)
    # A confirmed change still waiting to apply is never "expired": its link's lifetime is over,
    # the change is not (a delay longer than the retention must not delete it).
    finished = EmailChangeRequest.objects.filter(
        Q(used_at__lt=cutoff) | Q(expires_at__lt=cutoff, used_at=None, confirmed_at=None)
    )
    return _in_batches(finished, lambda rows: rows.delete()[0])


def access_journal_purge(*, now: dt.datetime) -> int:
    """Delete access journal rows older than the retention period, a batch at a time."""
    cutoff = now - dt.timedelta(days=settings.GUICHET_ACCESS_JOURNAL_DAYS)
    done = 0
    last = 0
    while True:
        ids = access_journal_expired_ids(
            cutoff=cutoff, after=last, limit=settings.GUICHET_RETENTION_BATCH
        )
        if not ids:
            return done
        done += access_journal_purge_batch(ids=ids)
        last = ids[-1]


def retention_purge(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Run every retention step; the count of rows each one changed."""
    now = now or timezone.now()
    counts = {
        "outbox_redacted": outbox_recipients_redact(now=now),
        "sessions_deleted": sessions_expired_purge(now=now),
        "email_changes_deleted": email_changes_purge(now=now),
        "form_tokens_deleted": form_submissions_purge(now=now),
        "access_journal_deleted": access_journal_purge(now=now),
    }
    logger.info("retention purge: %s", counts)
    return counts
