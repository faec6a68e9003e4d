"""A small, hand-checked data set for the supervisors' figures (see the expected numbers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tickets.models import Ticket
from workflows.models import OutboxMessage

PARIS = ZoneInfo("Europe/Paris")
# Monday 4 May 2026, 11:00 in Paris; Friday 1 May is a public holiday.
NOW = dt.datetime(2026, 5, 4, 11, 0, tzinfo=PARIS)
SETTINGS = {
    "TIME_ZONE": "Europe/Paris",
    "GUICHET_BUSINESS_HOURS": {
        "timezone": "Europe/Paris", "weekdays": [0, 1, 2, 3, 4],
        "opens": "09:00", "closes": "18:00",
    },
    "GUICHET_PUBLIC_HOLIDAYS": ["2026-05-01"],
    "GUICHET_HOLIDAYS_COUNTRY": "",
    "GUICHET_TARGET_BUSINESS_HOURS": {"REG": 4, "REC": 4},
    "GUICHET_STALE_CLAIM_HOURS": 4,
    "GUICHET_PROMISE_MINUTES": 10,
    "GUICHET_OUTBOX_STUCK_MINUTES": 10,
}  # fmt: skip


def paris(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@dataclass
class Desk:
    alice: Account
    bob: Account
    tickets: dict[str, Ticket]


def ticket(name: str, **fields: object) -> Ticket:
    return TicketFactory(**fields)


def outbox(ticket: Ticket, template: str = "credentials", **fields: object) -> OutboxMessage:
    fields.setdefault("created_at", ticket.decided_at or ticket.created_at)
    return OutboxMessage.objects.create(
        ticket=ticket, template=template, recipient="m@example.org", **fields
    )


def build() -> Desk:
    """Six open tickets, seven decided ones (one outside the 30-day window), their e-mails."""
    alice = StaffFactory(username="alice")
    bob = StaffFactory(username="bob")
    t: dict[str, Ticket] = {}
    # --- open ---
    t["T1"] = ticket(
        "T1",
        kind="REG",
        created_at=paris(5, 4, 10, 30),
        assignee=bob,
        claimed_at=paris(5, 4, 10, 50),
    )
    t["T2"] = ticket("T2", kind="REG", created_at=paris(5, 4, 9, 0))
    t["T3"] = ticket(
        "T3",
        kind="REC",
        state="identity_mismatch",
        created_at=paris(4, 30, 15, 0),
        assignee=alice,
        claimed_at=paris(4, 30, 16, 0),
    )
    t["T4"] = ticket("T4", kind="REG", created_at=paris(4, 30, 16, 30))
    t["T5"] = ticket("T5", kind="REG", created_at=paris(5, 2, 10, 0))
    t["T6"] = ticket("T6", kind="EML", created_at=paris(5, 4, 5, 0))
    # --- decided ---
    t["D1"] = ticket(
        "D1",
        kind="REG",
        state="confirmed",
        created_at=paris(5, 4, 9, 10),
        claimed_at=paris(5, 4, 9, 20),
        decided_at=paris(5, 4, 9, 30),
        decided_by=alice,
    )
    t["D2"] = ticket(
        "D2",
        kind="REG",
        state="confirmed",
        created_at=paris(5, 4, 9, 0),
        decided_at=paris(5, 4, 10, 0),
        decided_by=alice,
    )
    t["D3"] = ticket(
        "D3",
        kind="REC",
        state="rejected",
        created_at=paris(5, 4, 9, 0),
        claimed_at=paris(5, 4, 9, 40),
        decided_at=paris(5, 4, 10, 10),
        decided_by=alice,
        rejection_reason="duplicate",
    )
    t["D4"] = ticket(
        "D4",
        kind="REG",
        state="confirmed",
        created_at=paris(5, 1, 12, 0),
        decided_at=paris(5, 2, 10, 0),
        decided_by=bob,
    )
    t["D5"] = ticket(
        "D5",
        kind="REG",
        state="rejected",
        created_at=paris(4, 10, 10, 0),
        decided_at=paris(4, 24, 10, 0),
        rejection_reason="expired",
    )
    t["D6"] = ticket(
        "D6",
        kind="REG",
        state="confirmed",
        created_at=paris(3, 30, 10, 0),
        decided_at=paris(4, 1, 10, 0),
        decided_by=bob,
    )
    t["D7"] = ticket(
        "D7",
        kind="REG",
        state="confirmed",
        created_at=paris(5, 2, 9, 0),
        claimed_at=paris(5, 2, 10, 0),
        decided_at=paris(5, 2, 11, 0),
        decided_by=bob,
    )
    # --- e-mails ---
    outbox(t["D1"], status="sent", attempts=1, sent_at=paris(5, 4, 9, 32))  # 120 s
    outbox(t["D2"], status="failed", attempts=8, last_error="SMTPRecipientsRefused: 550")
    outbox(t["D2"], status="sent", attempts=1, sent_at=paris(5, 4, 10, 5))
    outbox(t["D2"], status="sent", attempts=1, sent_at=paris(5, 4, 10, 20))  # latest: 1200 s
    outbox(t["D4"], status="sent", attempts=1, sent_at=paris(5, 2, 10, 3))  # 180 s
    outbox(t["D7"], status="pending", attempts=0)  # never attempted for 2 days: stuck
    outbox(t["D6"], status="sent", attempts=1, sent_at=paris(4, 1, 10, 1))  # outside the window
    outbox(
        t["T1"],
        template="acknowledgment",
        status="pending",
        attempts=2,
        last_error="SMTPServerDisconnected",
        created_at=paris(5, 4, 10, 31),
    )  # retrying
    # Queued 8 minutes ago, never attempted: not stuck yet (GUICHET_OUTBOX_STUCK_MINUTES).
    outbox(t["T1"], template="acknowledgment", status="pending", created_at=paris(5, 4, 10, 52))
    outbox(t["T2"], template="acknowledgment", status="sent", attempts=1, sent_at=paris(5, 4, 9, 1))
    return Desk(alice=alice, bob=bob, tickets=t)  # fmt: skip
