"""`manage.py seed_demo [--password P] [--totp-secret BASE32]`: staff users (with a known
authenticator key) and registry members to try every path. Refuses when DEBUG is off."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from members.models import Account, Coverage, CoverageKind, Member
from members.second_factor import device_seed, secret_from_b32

# The demo staff's authenticator key, printed in the README: anyone can compute its codes, which
# is why the command refuses to run with DEBUG off (`python manage.py demo_totp` prints one).
DEMO_TOTP_SECRET = "GUICHETDEMOSTAFFTOTPSECRET234567"  # noqa: S105 (public on purpose)

# Each member lets a newcomer try one path of the README's tour.
DEMO_MEMBERS = [
    # (member_number, nir, last, first, birth date, e-mail, coverages)
    (
        "100200300",
        "",
        "Martin",
        "Zoë",
        "1980-04-12",
        "zoe.martin@example.org",
        [CoverageKind.HEALTH_PRINCIPAL],
    ),
    (
        "100200301",
        "",
        "Dupont",
        "Jean-Luc",
        "1975-09-30",
        "jl.dupont@example.org",
        [CoverageKind.PROVIDENT_EMPLOYEE],
    ),
    (
        "100200302",
        "",
        "Martin",
        "Léo",
        "2010-06-01",
        "leo.martin@example.org",
        [CoverageKind.HEALTH_BENEFICIARY],
    ),
    (
        "100200303",
        "148032A00100112",
        "Nguyễn",
        "Thị Lan",
        "1948-03-05",
        "lan.nguyen@example.org",
        [CoverageKind.RETIREE],
    ),
    (
        "100200304",
        "",
        "O'Brien-Łukasz",
        "Anne-Sophie",
        "1969-12-24",
        "asob@example.org",
        [CoverageKind.HEALTH_PRINCIPAL, CoverageKind.RETIREE],
    ),
]


class Command(BaseCommand):
    help = "Create the demo staff users (agent, supervisor) and registry members (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="guichet-demo", help="staff password")
        parser.add_argument(
            "--totp-secret",
            default=DEMO_TOTP_SECRET,
            help="base32 authenticator key given to the demo staff (default: the README's)",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates known passwords and keys: it runs with DEBUG=1 only."
            )
        secret = options["totp_secret"]
        try:
            if len(secret_from_b32(secret)) < 10:
                raise ValueError("too short")
        except ValueError as exc:
            raise CommandError("--totp-secret must be base32 of at least 80 bits.") from exc
        agents, _ = Group.objects.get_or_create(name="agents")
        supervisors, _ = Group.objects.get_or_create(name="supervisors")
        for username, groups in (("agent", [agents]), ("supervisor", [supervisors, agents])):
            account = Account.objects.filter(username=username).first()
            if account is None:
                account = Account(username=username, is_staff=True)
            account.is_staff = True
            account.is_active = True
            account.set_password(options["password"])
            account.save()
            account.groups.set(groups)
            device_seed(account=account, secret=secret)
        for number, nir, last, first, born, email, kinds in DEMO_MEMBERS:
            member, _ = Member.objects.update_or_create(
                member_number=number,
                defaults={
                    "nir": nir,
                    "last_name": last,
                    "first_name": first,
                    "birth_date": datetime.date.fromisoformat(born),
                    "email": email,
                },
            )
            for kind in kinds:
                Coverage.objects.get_or_create(member=member, kind=kind)
        self.stdout.write(
            f"demo ready: staff 'agent' and 'supervisor', {len(DEMO_MEMBERS)} registry members; "
            "second-factor codes: `python manage.py demo_totp`"
            + (
                f" or an authenticator app with the key {secret}"
                if secret == DEMO_TOTP_SECRET
                else ""
            )
        )
