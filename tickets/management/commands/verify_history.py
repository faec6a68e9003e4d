"""Recompute every ticket's history hash chain and name the tickets whose history was altered."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
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


def archive_breaks(path: Path) -> list[str]:
    """What is wrong with an archive file written by `archive_history` (empty: it verifies).

    Checks the file's SHA-256 against its manifest, every chain link and row hash, and each
    chain's final hash against the one the manifest recorded. One line (one chain) in memory.
    """
    manifest_file = path.with_name(path.name.removesuffix(".jsonl") + ".manifest.json")
    if not manifest_file.exists():
        return [f"{path.name}: no manifest ({manifest_file.name})"]
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    problems: list[str] = []
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != manifest["sha256"]:
        problems.append(f"{path.name}: SHA-256 does not match the manifest (file changed)")
    final_hashes: dict[str, str] = manifest["final_hashes"]
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            chain = json.loads(line)
            reference = chain["ticket"]["reference"]
            seen.add(reference)
            previous = ""
            for row in chain["events"]:
                event = TicketEvent(
                    ticket_id=chain["ticket"]["id"],
                    kind=row["kind"],
                    from_state=row["from_state"],
                    to_state=row["to_state"],
                    actor_id=row["actor_id"],
                    actor_kind=row["actor_kind"],
                    reason=row["reason"],
                    body=row["body"],
                    data=row["data"],
                    request_id=row["request_id"],
                    created_at=dt.datetime.fromisoformat(row["created_at"]),
                    previous_hash=row["previous_hash"],
                )
                if row["previous_hash"] != previous:
                    problems.append(f"{reference}: event {row['id']}: chain broken")
                if event.compute_hash() != row["row_hash"]:
                    problems.append(
                        f"{reference}: event {row['id']}: content does not match its hash"
                    )
                previous = row["row_hash"]
            if final_hashes.get(reference) != previous:
                problems.append(f"{reference}: final hash differs from the manifest")
    for reference in sorted(set(final_hashes) - seen):
        problems.append(f"{reference}: in the manifest, missing from the file")
    return problems


class Command(BaseCommand):
    help = "Verify the history hash chain; exit 1 naming every ticket whose history changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("references", nargs="*", help="Only these tickets (default: all).")
        parser.add_argument(
            "--archive",
            metavar="FILE",
            action="append",
            default=[],
            help="Verify this archive file (from archive_history) against its manifest instead.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["archive"]:
            self._verify_archives([Path(name) for name in options["archive"]])
            return
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

    def _verify_archives(self, paths: list[Path]) -> None:
        failed = 0
        for path in paths:
            problems = archive_breaks(path)
            if problems:
                failed += 1
                for line in problems:
                    self.stderr.write(line)
            else:
                self.stdout.write(f"{path.name}: archive intact.")
        if failed:
            raise CommandError(f"{failed} archive file(s) altered.", returncode=1)
