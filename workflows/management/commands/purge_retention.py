"""Run the retention purge now (the beat task `retention-purge` runs it daily)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from workflows.services.retention import retention_purge


class Command(BaseCommand):
    help = (
        "Forget what the retention settings say to forget: old outbox recipient addresses, "
        "expired sessions, finished e-mail change requests, old form tokens."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for name, count in retention_purge().items():
            self.stdout.write(f"{name}: {count}")
