"""Takeover signals against a labelled scenario set: precision and recall (docs/benchmarks.md).

    .venv/bin/python benchmarks/risk_scenarios.py            # SQLite in memory, ~10 s
    .venv/bin/python benchmarks/risk_scenarios.py --verbose  # every scenario and its signals

Each scenario is a short story of requests through the real intake (`request_intake`), on a
small registry of members with accounts; the last request's ticket is read back and its risk
level compared with the label an agent would give it. Scenarios run one by one in a rolled-back
transaction. Honest scenarios are labelled `none` — even those an agent might find odd — so
the false alarms they raise are counted, not hidden. The same set is checked by
tests/workflows/test_risk_scenarios.py.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

HONEST = "honest"
REPEAT = "honest repeat"
TAKEOVER = "takeover"


@dataclass(frozen=True)
class Step:
    """One request: whose identity is typed, what kind, from where, with which address."""

    person: int  # index in the registry below
    kind: str = "REC"
    email: str = ""  # "" = the address on file for the person
    ip: str = "198.51.100.10"
    days_ago: float = 0
    wrong_answer: bool = False
    requested_email: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    expected: str  # none / some / high, for the last step's ticket
    steps: tuple[Step, ...]
    # Days since the persons' address (or password) changed, before the story starts.
    email_changed_days: dict[int, float] = field(default_factory=dict)
    password_changed_days: dict[int, float] = field(default_factory=dict)
    no_account: tuple[int, ...] = ()


def S(*steps: Step) -> tuple[Step, ...]:
    return steps


ATT = "evil.actor@example.net"
SCENARIOS: list[Scenario] = [
    # --- single honest requests -------------------------------------------------------------
    Scenario("registration, own address", HONEST, "none", S(Step(0, "REG")), no_account=(0,)),
    Scenario("registration, webmail", HONEST, "none",
             S(Step(0, "REG", email="zoe.martin@gmail.com")), no_account=(0,)),
    Scenario("recovery, address on file", HONEST, "none", S(Step(1))),
    Scenario("recovery, right answer, new address", HONEST, "none",
             S(Step(1, requested_email="zoe.new@example.org"))),
    Scenario("access problem", HONEST, "none", S(Step(2, "ACC"))),
    Scenario("closure", HONEST, "none", S(Step(3, "CLO"))),
    Scenario("e-mail change via support", HONEST, "none",
             S(Step(4, "EML", requested_email="new4@example.org"))),
    Scenario("recovery, address in capitals", HONEST, "none",
             S(Step(1, email="M700000001@EXAMPLE.ORG"))),
    Scenario("recovery, IPv6", HONEST, "none", S(Step(2, ip="2001:db8:5:6::1"))),
    Scenario("recovery, password changed 2 months ago", HONEST, "none", S(Step(1)),
             password_changed_days={1: 60}),
    Scenario("recovery, address changed 20 days ago", HONEST, "none", S(Step(2)),
             email_changed_days={2: 20}),
    Scenario("registration, agent on the phone (no IP)", HONEST, "none",
             S(Step(5, "REG", ip="")), no_account=(5,)),
    Scenario("access problem, right answer", HONEST, "none", S(Step(3, "ACC"))),
    Scenario("registration after a busy office hour", HONEST, "none",
             S(Step(6, "REG", ip="192.0.2.10")), no_account=(6,)),
    Scenario("recovery, typo in the address typed", HONEST, "none",
             S(Step(4, email="m70000004@example.org"))),
    Scenario("recovery just after changing the password", HONEST, "none", S(Step(2)),
             password_changed_days={2: 2}),
    # --- honest repeats ---------------------------------------------------------------------
    Scenario("recovery asked twice the same day", REPEAT, "none", S(Step(1), Step(1))),
    Scenario("recovery, then access problem a week later", REPEAT, "none",
             S(Step(1, days_ago=7), Step(1, "ACC"))),
    Scenario("two family members, one connection", REPEAT, "none",
             S(Step(0, "REG", ip="203.0.113.4"), Step(5, "REG", ip="203.0.113.4")),
             no_account=(0, 5)),
    Scenario("registration then recovery 40 days later", REPEAT, "none",
             S(Step(6, "REG", days_ago=40), Step(1))),
    Scenario("same address for the same person twice", REPEAT, "none",
             S(Step(2, "ACC", days_ago=3), Step(2, "CLO"))),
    Scenario("three requests over two months", REPEAT, "none",
             S(Step(3, days_ago=60), Step(3, "ACC", days_ago=35), Step(3, "CLO"))),
    Scenario("wrong answer once, then right", REPEAT, "none",
             S(Step(4, requested_email="n4@example.org", wrong_answer=True, days_ago=1),
               Step(4, "ACC"))),
    Scenario("public library computer, two people a day apart", REPEAT, "none",
             S(Step(1, ip="192.0.2.77", days_ago=2), Step(2, ip="192.0.2.78"))),
    Scenario("retry after the first one expired", REPEAT, "none",
             S(Step(2, days_ago=31), Step(2))),
    Scenario("one person, three tries in a day", REPEAT, "none",
             S(Step(3, "REC"), Step(3, "ACC"), Step(3, "CLO"))),
    Scenario("household of three, one evening", REPEAT, "none",
             S(Step(0, "REG", ip="203.0.113.9"), Step(5, "REG", ip="203.0.113.9"),
               Step(6, "REG", ip="203.0.113.10")), no_account=(0, 5, 6)),
    Scenario("a carer's address for their parent", REPEAT, "none",
             S(Step(0, "REG", email="carer@example.org")), no_account=(0,)),
    # --- takeover patterns ------------------------------------------------------------------
    Scenario("victim's data, another member's address", TAKEOVER, "high",
             S(Step(1, email="m700000002@example.org"))),
    Scenario("one address for three identities", TAKEOVER, "high",
             S(Step(1, email=ATT, days_ago=2), Step(2, email=ATT, days_ago=1), Step(3, email=ATT))),
    Scenario("one address, two identities, new address asked", TAKEOVER, "high",
             S(Step(1, email=ATT, days_ago=1), Step(2, email=ATT, requested_email=ATT))),
    Scenario("recovery two days after an e-mail change, other address", TAKEOVER, "high",
             S(Step(1, email="someone@example.net")), email_changed_days={1: 2}),
    Scenario("one /24 for three identities in a day", TAKEOVER, "high",
             S(Step(1, ip="203.0.113.20", email="a1@example.net"),
               Step(2, ip="203.0.113.21", email="a2@example.net"),
               Step(3, ip="203.0.113.22", email="a3@example.net"))),
    Scenario("one /64 for three identities", TAKEOVER, "high",
             S(Step(1, ip="2001:db8:9:9::1", email="b1@example.net"),
               Step(2, ip="2001:db8:9:9::2", email="b2@example.net"),
               Step(4, ip="2001:db8:9:9::3", email="b3@example.net"))),
    Scenario("disposable address, different from file", TAKEOVER, "high",
             S(Step(2, email="take@mailinator.com"))),
    Scenario("wrong answer, new disposable address", TAKEOVER, "high",
             S(Step(3, wrong_answer=True, requested_email="x@yopmail.com"))),
    Scenario("wrong answer and another address", TAKEOVER, "high",
             S(Step(4, email="other@example.net", wrong_answer=True,
                    requested_email="other@example.net"))),
    Scenario("e-mail change right after a password change", TAKEOVER, "high",
             S(Step(2, "EML", email="new@example.net", requested_email="new@example.net")),
             password_changed_days={2: 1}),
    Scenario("hammering one member with several kinds", TAKEOVER, "high",
             S(Step(1, "REC", email="z1@example.net"), Step(1, "ACC", email="z1@example.net"),
               Step(1, "EML", email="z1@example.net", requested_email="z1@example.net"))),
    Scenario("registration with another member's registry address", TAKEOVER, "high",
             S(Step(0, "REG", email="m700000003@example.org")), no_account=(0,)),
    Scenario("second identity from the attacker's address", TAKEOVER, "some",
             S(Step(1, email=ATT, days_ago=5), Step(2, email=ATT))),
    Scenario("other address only", TAKEOVER, "some", S(Step(3, email="unknown@example.net"))),
    Scenario("disposable address for a registration", TAKEOVER, "some",
             S(Step(0, "REG", email="new@guerrillamail.com")), no_account=(0,)),
    Scenario("wrong answer only", TAKEOVER, "some",
             S(Step(2, wrong_answer=True, requested_email="q@example.net"))),
    Scenario("recovery a day after the address changed", TAKEOVER, "some", S(Step(4)),
             email_changed_days={4: 1}),
    Scenario("slow attacker: one address, identities weeks apart", TAKEOVER, "some",
             S(Step(1, email=ATT, days_ago=50), Step(3, email=ATT, days_ago=20),
               Step(4, email=ATT))),
]  # fmt: skip

REGISTRY = [
    # member number, last name, first name, birth date
    ("700000000", "Martin", "Zoë", datetime.date(1980, 4, 12)),
    ("700000001", "Bernard", "Jean", datetime.date(1975, 1, 3)),
    ("700000002", "Thomas", "Marie", datetime.date(1990, 7, 21)),
    ("700000003", "Petit", "Hugo", datetime.date(1968, 11, 30)),
    ("700000004", "Robert", "Léa", datetime.date(2001, 2, 14)),
    ("700000005", "Martin", "Théo", datetime.date(2005, 9, 9)),
    ("700000006", "Durand", "Inès", datetime.date(1959, 5, 5)),
]
ANSWER = "Caramel"
QUESTION = "first_pet"


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    level: str
    signals: list[str]


@cache
def _answer_hash() -> str:
    """One (deliberately slow) hash of the secret answer, shared by every scenario."""
    from members.secret_answers import secret_answer_hash

    return secret_answer_hash(ANSWER)


def run_scenario(scenario: Scenario) -> Outcome:
    """Play one story in a transaction that is rolled back; the last ticket's level."""
    from django.db import transaction
    from django.utils import timezone

    from members.models import Account, Coverage, CoverageKind, Member
    from tickets.models import Ticket
    from workflows.models import IntakeTrace
    from workflows.services.intake import RequestData, request_intake

    answer_hash = _answer_hash()
    with transaction.atomic():
        now = timezone.now()
        members: list[Member] = []
        accounts: dict[int, Account] = {}
        for index, (number, last, first, birth) in enumerate(REGISTRY):
            member = Member.objects.create(
                member_number=number,
                last_name=last,
                first_name=first,
                birth_date=birth,
                email=f"m{number}@example.org",
            )
            Coverage.objects.create(member=member, kind=CoverageKind.HEALTH_PRINCIPAL)
            members.append(member)
            if index in scenario.no_account:
                continue
            account = Account.objects.create(
                username=number,
                member=member,
                email=member.email,
                secret_question=QUESTION,
                secret_answer_hash=answer_hash,
            )
            for days_by_person, name in (
                (scenario.email_changed_days, "email_changed_at"),
                (scenario.password_changed_days, "password_changed_at"),
            ):
                if index in days_by_person:
                    setattr(account, name, now - datetime.timedelta(days=days_by_person[index]))
            account.save()
            accounts[index] = account
        ticket: Ticket | None = None
        for step in sorted(scenario.steps, key=lambda s: -s.days_ago):
            member = members[step.person]
            on_file = accounts[step.person].email if step.person in accounts else member.email
            ticket = request_intake(
                data=RequestData(
                    kind=step.kind,
                    member_number=member.member_number,
                    last_name=member.last_name,
                    first_name=member.first_name,
                    birth_date=member.birth_date,
                    email=step.email or on_file,
                    secret_question=QUESTION,
                    secret_answer="Wrong" if step.wrong_answer else ANSWER,
                    requested_email=step.requested_email,
                    client_ip=step.ip,
                )
            ).ticket
            if step.days_ago:
                moment = now - datetime.timedelta(days=step.days_ago)
                IntakeTrace.objects.filter(ticket=ticket, created_at__gte=now).update(
                    created_at=moment
                )
        if ticket is None:
            raise ValueError(f"scenario {scenario.name!r} has no step")
        ticket.refresh_from_db()
        outcome = Outcome(
            scenario=scenario,
            level=ticket.risk_level,
            signals=[signal["code"] for signal in ticket.risk_signals],
        )
        transaction.set_rollback(True)
    return outcome


def figures(outcomes: list[Outcome]) -> dict[str, Any]:
    """Precision and recall, for "flagged" (some or high) and for "high"."""

    def pr(predicted: set[str], positive: set[str]) -> dict[str, Any]:
        flagged = [o for o in outcomes if o.level in predicted]
        actual = [o for o in outcomes if o.scenario.expected in positive]
        true_positive = [o for o in flagged if o.scenario.expected in positive]
        return {
            "precision": len(true_positive) / len(flagged) if flagged else 1.0,
            "recall": len(true_positive) / len(actual) if actual else 1.0,
            "flagged": len(flagged),
            "positive": len(actual),
            "true_positive": len(true_positive),
        }

    return {
        "scenarios": len(outcomes),
        "exact": sum(o.level == o.scenario.expected for o in outcomes),
        "flagged": pr({"some", "high"}, {"some", "high"}),
        "high": pr({"high"}, {"high"}),
    }


def run_all() -> list[Outcome]:
    return [run_scenario(scenario) for scenario in SCENARIOS]


def report() -> None:
    """Print the figures. (Not named `main`: it loads no database of its own to drop — SQLite in
    memory — so tests/benchmarks' drop-the-database rule does not apply to it.)"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every scenario")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")
    os.environ["DJANGO_SETTINGS_MODULE"] = "desk.settings_test"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    outcomes = run_all()
    result = figures(outcomes)
    if args.verbose:
        for o in outcomes:
            mark = "ok " if o.level == o.scenario.expected else "MISS"
            print(
                f"{mark} {o.scenario.group:<14} expected {o.scenario.expected:<4} got "
                f"{o.level:<4} {o.scenario.name} {o.signals}"
            )
    print(f"{result['scenarios']} scenarios, {result['exact']} at the expected level")
    for name in ("flagged", "high"):
        row = result[name]
        print(
            f"{name:<8} precision {row['precision']:.2f} ({row['true_positive']}/{row['flagged']})"
            f"  recall {row['recall']:.2f} ({row['true_positive']}/{row['positive']})"
        )


if __name__ == "__main__":
    report()
