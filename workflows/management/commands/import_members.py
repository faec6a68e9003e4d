"""`manage.py import_members FILE.csv [--dry-run]`: upsert the registry from the insurer's CSV.

It lives in `workflows` (not `members`) because the import re-checks the open requests of the
members it changes (`workflows.services.registry_recheck`); it prints the run's import id, which
every history row it caused carries.
"""

from __future__ import annotations

import os
import sys
from typing import Any, BinaryIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.services.registry import RowError, read_member_csv
from workflows.services.registry_recheck import registry_import


class Command(BaseCommand):
    help = (
        "Import registry members from a UTF-8 CSV (header: "
        "member_number,nir,last_name,first_name,birth_date,email,coverages)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path to the CSV file")
        parser.add_argument("--dry-run", action="store_true", help="check every row, write none")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot open {path}: {exc.strerror}") from None
        size = os.path.getsize(path) or 1
        show_progress = sys.stderr.isatty()

        def progress(done: int) -> None:
            if show_progress:
                # The byte offset (the text layer cannot tell() while being iterated).
                offset = cast(BinaryIO, handle.buffer).tell()
                percent = min(100, offset * 100 // size)
                sys.stderr.write(f"\r{done:,} rows read ({percent}%)")
                sys.stderr.flush()

        with handle:
            try:
                run = registry_import(
                    rows=read_member_csv(handle),
                    source="import_members",
                    dry_run=options["dry_run"],
                    batch_size=options["batch_size"],
                    progress=progress,
                )
            except RowError as exc:
                raise CommandError(str(exc), returncode=1) from None
            except UnicodeDecodeError as exc:
                raise CommandError(
                    f"the file is not UTF-8 text: {exc.reason}", returncode=1
                ) from None
        if show_progress:
            sys.stderr.write("\n")
        report = run.report
        for line, reason in report.rejected:
            self.stderr.write(f"line {line}: {reason}")
        verb = "would import" if report.dry_run else "imported"
        self.stdout.write(f"{verb} {report.imported} rows; rejected {len(report.rejected)}")
        if not report.dry_run:
            recheck = run.recheck
            self.stdout.write(
                f"import {run.import_id}: {report.added} members added, {report.changed} with "
                f"identity or coverages changed; {recheck.rechecked} open requests re-checked "
                f"({recheck.now_match} now match, {recheck.moved_to_mismatch} moved to "
                f"identity_mismatch, {recheck.approvals_withdrawn} approvals withdrawn)"
            )
        if report.rejected:
            raise CommandError(f"{len(report.rejected)} row(s) rejected", returncode=1)
