"""`manage.py demo_totp [--secret BASE32]`: the demo staff's current second-factor code.

The demo key is public (README): like seed_demo, this refuses when DEBUG is off.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.management.commands.seed_demo import DEMO_TOTP_SECRET
from members.second_factor import current_code, secret_from_b32


class Command(BaseCommand):
    help = "Print the current 6-digit code of the demo staff's authenticator (DEBUG only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--secret", default=DEMO_TOTP_SECRET, help="base32 key of seed_demo")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_totp is for the demo: it runs with DEBUG=1 only.")
        self.stdout.write(current_code(secret_from_b32(options["secret"])))
