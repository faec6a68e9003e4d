"""Archive the history of tickets decided before a month: export whole chains, then drop them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.services.archive import ArchiveError, history_archive


class Command(BaseCommand):
    help = (
        "Month by month, export the whole history chains of tickets decided before --before "
        "(one JSONL file and a manifest per month), then drop those tickets from the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", required=True, metavar="YYYY-MM", help="First month kept.")
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="Directory for the archive files (default: var/archive/history).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be archived; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out = options["out"] or Path(settings.VAR_DIR) / "archive" / "history"
        try:
            results = history_archive(before=options["before"], out=out, dry_run=options["dry_run"])
        except ArchiveError as error:
            raise CommandError(str(error)) from error
        if not results:
            self.stdout.write("Nothing to archive.")
        for result in results:
            if options["dry_run"]:
                self.stdout.write(
                    f"{result.month}: would archive {result.tickets} tickets, "
                    f"{result.events} events"
                )
                continue
            self.stdout.write(
                f"{result.month}: {result.file} — {result.tickets} tickets, "
                f"{result.events} events exported; {result.dropped_tickets} tickets, "
                f"{result.dropped_events} events dropped"
            )
            if result.kept:
                self.stdout.write(
                    f"{result.month}: kept (changed since export): {', '.join(result.kept)}"
                )
