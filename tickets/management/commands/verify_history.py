"""Recompute every ticket's history hash chain and name the tickets whose history was altered."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.keyset import keyset_objects
from tickets.models import Ticket, TicketEvent

# The chain order: a ticket's events by time, the id breaking ties.
HISTORY_KEY = ("ticket_id", "created_at", "id")


def history_breaks(
    *, ticket_ids: list[int] | None = None, chunk_size: int = 2000
) -> dict[int, list[str]]:
    """Map ticket id -> what is wrong in its chain (edited row, removed or reordered row)."""
    events = TicketEvent.objects.all()
    if ticket_ids is not None:
        events = events.filter(ticket_id__in=ticket_ids)
    problems: dict[int, list[str]] = {}
    current: int | None = None
    previous = ""
    # Keyset chunks along the (ticket, created_at, id) index: no server-side cursor, no long
    # transaction, memory bounded by the chunk (core/keyset.py; PgBouncer-safe).
    for event in keyset_objects(events, key=HISTORY_KEY, chunk_size=chunk_size):
        if event.ticket_id != current:
            current, previous = event.ticket_id, ""
        if event.previous_hash != previous:
            problems.setdefault(event.ticket_id, []).append(
                f"event {event.pk}: chain broken (a row before it was changed or removed)"
            )
        if event.compute_hash() != event.row_hash:
            problems.setdefault(event.ticket_id, []).append(
                f"event {event.pk}: content does not match its hash"
            )
        previous = event.row_hash
    return problems


class Command(BaseCommand):
    help = "Verify the history hash chain; exit 1 naming every ticket whose history changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("references", nargs="*", help="Only these tickets (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = None
        if options["references"]:
            ids = list(
                Ticket.objects.filter(reference__in=options["references"]).values_list(
                    "pk", flat=True
                )
            )
        problems = history_breaks(ticket_ids=ids)
        checked = TicketEvent.objects.count() if ids is None else None
        if not problems:
            self.stdout.write(f"History intact ({checked or 'selected'} events checked).")
            return
        references = dict(Ticket.objects.filter(pk__in=problems).values_list("pk", "reference"))
        for ticket_id, lines in sorted(problems.items()):
            for line in lines:
                self.stderr.write(f"{references.get(ticket_id, ticket_id)}: {line}")
        raise CommandError(f"History altered on {len(problems)} ticket(s).", returncode=1)
