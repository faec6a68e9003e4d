"""CSV exports streamed row by row: memory stays flat however many rows match.

Rows come in keyset chunks (`core.keyset`): one short `… WHERE (created_at, id) > (last) LIMIT n`
query per chunk along the index, so neither Django's result cache nor the driver holds the whole
result, and no server-side cursor is needed (PgBouncer-safe, docs/operations.md).
Exports carry no personal data (no names, member IDs, NIR or addresses) and no note bodies:
references lead back to the desk, where access is logged.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from core.keyset import keyset_values
from members.models import AccessJournalEntry
from tickets.models import Ticket, TicketEvent

CHUNK_SIZE = 2000
# Spreadsheets run cells starting with these as formulas (CSV injection): prefix a quote.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

QUEUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("reference", "reference"),
    ("kind", "kind"),
    ("state", "state"),
    ("channel", "channel"),
    ("match_result", "match_result"),
    ("created_at", "created_at"),
    ("assignee", "assignee__username"),
    ("claimed_at", "claimed_at"),
    ("decided_at", "decided_at"),
    ("decided_by", "decided_by__username"),
    ("rejection_reason", "rejection_reason"),
)
AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event", "id"),
    ("at", "created_at"),
    ("ticket", "ticket__reference"),
    ("ticket_kind", "ticket__kind"),
    ("action", "kind"),
    ("from_state", "from_state"),
    ("to_state", "to_state"),
    ("actor", "actor__username"),
    ("actor_kind", "actor_kind"),
    ("reason", "reason"),
)

# Who looked at which file: the member ID is the record's key (the journal's purpose), never
# the NIR, birth date or names; the reason as chosen or typed by the agent.
ACCESS_JOURNAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entry", "id"),
    ("at", "created_at"),
    ("actor", "actor__username"),
    ("kind", "kind"),
    ("member", "member__member_number"),
    ("ticket", "ticket_reference"),
    ("reason", "reason"),
    ("reason_text", "reason_text"),
)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any, tz: dt.tzinfo) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(tz).isoformat(timespec="seconds")
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# Every export is read in this order: (created_at, id) is unique, non-null and indexed.
EXPORT_KEY = ("created_at", "id")


def csv_lines(
    queryset: QuerySet[Any], columns: Sequence[tuple[str, str]], *, chunk_size: int | None = None
) -> Iterator[str]:
    """A header line, then one line per row, fetched chunk by chunk (nothing runs until read)."""
    writer = csv.writer(_Echo())
    tz = ZoneInfo(settings.TIME_ZONE)
    yield writer.writerow([header for header, _ in columns])
    columns_paths = [path for _, path in columns]
    # Read at call time, so a test (or an operator's patch) can bound it differently.
    rows: Iterable[tuple[Any, ...]] = keyset_values(
        queryset, columns_paths, key=EXPORT_KEY, chunk_size=chunk_size or CHUNK_SIZE
    )
    for row in rows:
        yield writer.writerow([_cell(value, tz) for value in row])


def csv_response(lines: Iterator[str], *, name: str) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}_{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def queue_export(queryset: QuerySet[Ticket], *, slug: str) -> StreamingHttpResponse:
    """The filtered queue, oldest first (the order of `ticket_created_idx`)."""
    return csv_response(csv_lines(queryset, QUEUE_COLUMNS), name=f"queue_{slug}")


def audit_export(queryset: QuerySet[TicketEvent], *, slug: str) -> StreamingHttpResponse:
    """The filtered history, in time order."""
    return csv_response(csv_lines(queryset, AUDIT_COLUMNS), name=f"audit_{slug}")


def access_journal_export(queryset: QuerySet[AccessJournalEntry]) -> StreamingHttpResponse:
    """The whole access journal (what retention keeps), in time order."""
    return csv_response(csv_lines(queryset, ACCESS_JOURNAL_COLUMNS), name="access_journal")
