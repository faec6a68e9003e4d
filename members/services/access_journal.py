"""The access journal: one row per look at a member's file (docs/product.md, "Access journal").

A row says who looked, at which record (registry member, ticket reference), which kind of look
(ticket page, registry record, reveal of masked data with its reason) and when; never the data
itself. Writing one is a single INSERT, so a desk page pays one query for it.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from members.models import AccessJournalEntry, AccessKind, Account, RevealReason


def access_record(
    *,
    actor: Account,
    kind: AccessKind,
    member_id: int | None = None,
    ticket_reference: str = "",
    reason: RevealReason | str = "",
    reason_text: str = "",
) -> AccessJournalEntry:
    """Append one journal row (one INSERT)."""
    return AccessJournalEntry.objects.create(
        actor=actor,
        kind=kind,
        member_id=member_id,
        ticket_reference=ticket_reference,
        reason=reason,
        reason_text=reason_text[:200],
    )


def access_journal_purge_batch(*, ids: list[int]) -> int:
    """Delete these journal rows, inside one transaction that tells the trigger it is the purge.

    The ORM refuses deletes on the journal; the retention purge is the single way rows go.
    """
    if not ids:
        return 0
    table = AccessJournalEntry._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL guichet.access_journal_purge = 'on'")
        placeholders = ", ".join(["%s"] * len(ids))
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", ids)  # noqa: S608
        return int(cursor.rowcount)


def access_journal_expired_ids(*, cutoff: dt.datetime, after: int, limit: int) -> list[int]:
    """The next batch of journal row ids older than `cutoff`, by id."""
    return list(
        AccessJournalEntry.objects.filter(created_at__lt=cutoff, pk__gt=after)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
