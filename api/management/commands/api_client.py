"""`manage.py api_client create|rotate|revoke|list`: the API's clients (docs/interfaces.md)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.clients import (
    ClientError,
    Credentials,
    client_create,
    client_revoke,
    client_rotate,
    scopes_parse,
)
from api.models import ApiClient


class Command(BaseCommand):
    help = "Create, rotate, revoke or list API clients; a secret is printed once, never stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="A new client with its scopes.")
        create.add_argument("name")
        create.add_argument("--scopes", required=True, help="Comma-separated, e.g. events:read")
        create.add_argument("--rate", type=int, default=None, help="Calls per minute.")
        create.add_argument("--json", action="store_true")
        rotate = sub.add_parser("rotate", help="A new secret; the old one works for the grace.")
        rotate.add_argument("client_id")
        rotate.add_argument("--json", action="store_true")
        revoke = sub.add_parser("revoke", help="Refuse the client and its tokens at once.")
        revoke.add_argument("client_id")
        sub.add_parser("list", help="Clients, scopes and state (never a secret).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "create":
                self._print(
                    client_create(
                        name=options["name"],
                        scopes=scopes_parse(options["scopes"]),
                        calls_per_minute=options["rate"],
                    ),
                    as_json=options["json"],
                )
            elif action == "rotate":
                self._print(client_rotate(client_id=options["client_id"]), as_json=options["json"])
            elif action == "revoke":
                client_revoke(client_id=options["client_id"])
                self.stdout.write(f"revoked {options['client_id']}")
            else:
                for client in ApiClient.objects.order_by("name"):
                    state = "revoked" if client.is_revoked else "active"
                    self.stdout.write(
                        f"{client.client_id}\t{client.name}\t{','.join(client.scopes)}\t{state}"
                    )
        except ClientError as exc:
            raise CommandError(str(exc)) from exc

    def _print(self, credentials: Credentials, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "client_id": credentials.client_id,
                        "client_secret": credentials.client_secret,
                    }
                )
            )
            return
        self.stdout.write(f"client_id: {credentials.client_id}")
        self.stdout.write(f"client_secret: {credentials.client_secret}")
        self.stdout.write("The secret is shown once; store it in the client's vault now.")
