"""Archiving the history: export decided tickets' whole chains month by month, then drop them.

`manage.py archive_history --before YYYY-MM` (docs/operations.md, "Archiving the history";
docs/interfaces.md). For each calendar month (UTC) of decision before the cut, oldest first:

1. export — every ticket decided that month (confirmed or rejected; an open ticket is never
   read), in keyset batches of `GUICHET_RETENTION_BATCH` tickets, one JSON line per ticket: the
   ticket row (its secret-answer hash left out), its whole history chain in chain order, its
   attached-request aliases and its outbox rows (status and timestamps; never the recipient or
   the template context). A ticket with an e-mail still pending or sending waits for a later run.
   Then a manifest beside the file: the SHA-256 of the file and every chain's final hash.
2. drop — reading the exported file back (so exactly what was written is dropped), batch by
   batch, each in its own short transaction with the tickets locked: a ticket whose chain changed
   since the export (a new event) or that is no longer decided is kept and reported; otherwise its
   outbox rows and aliases (protected foreign keys onto the ticket), its events (through the
   database function `tickets_history_archive_drop`, the only way past the append-only trigger)
   and the ticket itself are deleted.

Memory stays bounded by one batch (plus the month's final hashes, ~100 bytes a ticket, for the
manifest); no lock outlives a batch, so the desk keeps working. `verify_history` still verifies
every chain left in the database (whole chains go, never part of one), and
`verify_history --archive FILE` re-verifies an archive file against its manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from tickets.models import Ticket, TicketEvent, TicketState
from workflows.models import OutboxMessage, OutboxStatus, RequestAlias

logger = logging.getLogger(__name__)

DECIDED_STATES = (TicketState.CONFIRMED, TicketState.REJECTED)
UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# Not exported: a hash of the member's secret answer is a credential, however hashed.
TICKET_FIELDS_LEFT_OUT = frozenset({"secret_answer_hash"})
EVENT_FIELDS = (
    "id",
    "kind",
    "from_state",
    "to_state",
    "actor_id",
    "actor_kind",
    "reason",
    "body",
    "data",
    "request_id",
    "created_at",
    "previous_hash",
    "row_hash",
)
OUTBOX_FIELDS = ("id", "template", "status", "attempts", "created_at", "sent_at")
ALIAS_FIELDS = ("reference", "channel", "created_at")


class ArchiveError(Exception):
    """The archive cannot be written (e.g. a month's file already exists)."""


@dataclass
class MonthResult:
    month: str
    tickets: int = 0
    events: int = 0
    dropped_tickets: int = 0
    dropped_events: int = 0
    kept: list[str] = field(default_factory=list)
    file: Path | None = None


def month_start(value: str) -> dt.datetime:
    """'YYYY-MM' -> the first instant of that month, UTC."""
    try:
        year, month = (int(part) for part in value.split("-"))
        return dt.datetime(year, month, 1, tzinfo=dt.UTC)
    except ValueError as error:
        raise ArchiveError(f"not a month (YYYY-MM): {value!r}") from error


def _next_month(start: dt.datetime) -> dt.datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def _archivable(start: dt.datetime, end: dt.datetime) -> Any:
    """Decided tickets of [start, end) with no e-mail left to send."""
    unsent = OutboxMessage.objects.filter(status__in=UNSENT).values("ticket_id")
    return (
        Ticket.objects.filter(state__in=DECIDED_STATES, decided_at__gte=start, decided_at__lt=end)
        .exclude(pk__in=unsent)
        .order_by("pk")
    )


def _months(before: dt.datetime) -> Iterator[dt.datetime]:
    first = (
        Ticket.objects.filter(state__in=DECIDED_STATES, decided_at__lt=before)
        .order_by("decided_at")
        .values_list("decided_at", flat=True)
        .first()
    )
    if first is None:
        return
    start = first.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while start < before:
        yield start
        start = _next_month(start)


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _json(getattr(obj, name)) for name in fields}


def _ticket_row(ticket: Ticket) -> dict[str, Any]:
    return {
        f.attname: _json(getattr(ticket, f.attname))
        for f in Ticket._meta.concrete_fields
        if f.attname not in TICKET_FIELDS_LEFT_OUT
    }


def _batches(queryset: Any, size: int) -> Iterator[list[Ticket]]:
    last = 0
    while True:
        batch = list(queryset.filter(pk__gt=last)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def _chains(tickets: list[Ticket]) -> Iterator[dict[str, Any]]:
    ids = [t.pk for t in tickets]
    events: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for event in TicketEvent.objects.filter(ticket_id__in=ids).order_by(
        "ticket_id", "created_at", "id"
    ):
        events[event.ticket_id].append(_row(event, EVENT_FIELDS))
    aliases: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for alias in RequestAlias.objects.filter(ticket_id__in=ids).order_by("pk"):
        aliases[alias.ticket_id].append(_row(alias, ALIAS_FIELDS))
    outbox: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for message in OutboxMessage.objects.filter(ticket_id__in=ids).order_by("pk"):
        assert message.ticket_id is not None  # noqa: S101 - filtered on it
        outbox[message.ticket_id].append(_row(message, OUTBOX_FIELDS))
    for ticket in tickets:
        yield {
            "ticket": _ticket_row(ticket),
            "events": events[ticket.pk],
            "aliases": aliases[ticket.pk],
            "outbox": outbox[ticket.pk],
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".jsonl") + ".manifest.json")


def _export(start: dt.datetime, end: dt.datetime, out: Path, result: MonthResult) -> None:
    path = out / f"history-{result.month}.jsonl"
    if path.exists() or manifest_path(path).exists():
        raise ArchiveError(f"{path} already exists: move it away (or drop it) and run again")
    final_hashes: dict[str, str] = {}
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for batch in _batches(_archivable(start, end), settings.GUICHET_RETENTION_BATCH):
            for chain in _chains(batch):
                handle.write(json.dumps(chain, sort_keys=True, ensure_ascii=True) + "\n")
                events = chain["events"]
                final_hashes[chain["ticket"]["reference"]] = (
                    events[-1]["row_hash"] if events else ""
                )
                result.tickets += 1
                result.events += len(events)
        handle.flush()
        os.fsync(handle.fileno())
    if not result.tickets:
        partial.unlink()
        return
    partial.rename(path)
    manifest = {
        "month": result.month,
        "file": path.name,
        "sha256": _sha256(path),
        "tickets": result.tickets,
        "events": result.events,
        "final_hashes": final_hashes,
    }
    with manifest_path(path).open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, sort_keys=True, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    result.file = path


def _exported(path: Path, size: int) -> Iterator[list[tuple[int, str]]]:
    """(ticket id, final hash) of every chain in the file, `size` at a time."""
    batch: list[tuple[int, str]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            chain = json.loads(line)
            events = chain["events"]
            batch.append((chain["ticket"]["id"], events[-1]["row_hash"] if events else ""))
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _drop_events(ids: list[int]) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tickets_history_archive_drop(%s::bigint[])", [ids])
            return int(cursor.fetchone()[0])
        # Elsewhere (SQLite, the demo) there is no trigger to pass.
        placeholders = ", ".join(["%s"] * len(ids))
        cursor.execute(
            f"DELETE FROM tickets_ticketevent WHERE ticket_id IN ({placeholders})",  # noqa: S608
            ids,
        )
        return int(cursor.rowcount)


def _drop(path: Path, result: MonthResult) -> None:
    for batch in _exported(path, settings.GUICHET_RETENTION_BATCH):
        wanted = dict(batch)
        with transaction.atomic():
            locked = dict(
                Ticket.objects.select_for_update()
                .filter(pk__in=wanted, state__in=DECIDED_STATES)
                .values_list("pk", "reference")
            )
            last_hash: dict[int, str] = {}
            for ticket_id, row_hash in (
                TicketEvent.objects.filter(ticket_id__in=locked)
                .order_by("ticket_id", "created_at", "id")
                .values_list("ticket_id", "row_hash")
            ):
                last_hash[ticket_id] = row_hash
            unsent = set(
                OutboxMessage.objects.filter(ticket_id__in=locked, status__in=UNSENT).values_list(
                    "ticket_id", flat=True
                )
            )
            ids = [pk for pk in locked if last_hash.get(pk, "") == wanted[pk] and pk not in unsent]
            result.kept += [locked.get(pk, str(pk)) for pk in wanted if pk not in set(ids)]
            if not ids:
                continue
            OutboxMessage.objects.filter(ticket_id__in=ids).delete()
            RequestAlias.objects.filter(ticket_id__in=ids).delete()
            result.dropped_events += _drop_events(ids)
            result.dropped_tickets += (
                Ticket.objects.filter(pk__in=ids).delete()[1].get("tickets.Ticket", 0)
            )


def history_archive(*, before: str, out: Path, dry_run: bool = False) -> list[MonthResult]:
    """Archive (export, then drop) decided tickets' histories month by month before `before`."""
    cut = month_start(before)
    results: list[MonthResult] = []
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
    for start in _months(cut):
        end = min(_next_month(start), cut)
        result = MonthResult(month=f"{start:%Y-%m}")
        if dry_run:
            tickets = _archivable(start, end)
            result.tickets = tickets.count()
            result.events = TicketEvent.objects.filter(
                Q(ticket_id__in=tickets.values("pk"))
            ).count()
        else:
            _export(start, end, out, result)
            if result.file is not None:
                _drop(result.file, result)
            logger.info(
                "history archive %s: %s tickets, %s events exported; %s tickets, %s events "
                "dropped; %s kept",
                result.month,
                result.tickets,
                result.events,
                result.dropped_tickets,
                result.dropped_events,
                len(result.kept),
            )
        if result.tickets:
            results.append(result)
    return results
