"""Every desk page runs a fixed number of queries, whatever the number of rows it shows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from members.models import Account
from tests.factories import MemberFactory, TicketFactory
from tickets.models import EventKind, Ticket, TicketState
from tickets.services import event_record
from workflows.models import EmailTemplate, OutboxMessage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)", re.I)
# 10 for the page, plus one: the session's second-factor device (docs/security.md §40).
MAX_QUERIES = 11
# Pages that show one member's file also append one access journal row: one INSERT more.
JOURNAL_INSERT = 1


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return sum(1 for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"]))


def _tickets(count: int, **kwargs: object) -> list[Ticket]:
    member = MemberFactory(last_name="Lefèvre")
    return [
        TicketFactory(member=member, submitted_last_name="Lefèvre", **kwargs) for _ in range(count)
    ]


def _assert_flat(
    client: Client, url: Callable[[], str], grow: Callable[[], None], budget: int = MAX_QUERIES
) -> None:
    client.get(url())  # warm caches (staff list, content types)
    before = _count(client, url())
    grow()
    after = _count(client, url())
    assert before == after, f"{url()}: {before} queries with few rows, {after} with many"
    assert after <= budget


QUEUE_URLS = [
    "/desk/",
    "/desk/?queue=mine",
    "/desk/?queue=unassigned",
    "/desk/?queue=mismatch",
    "/desk/?queue=decided_today",
    "/desk/?queue=all",
    "/desk/?q=lefe",
    "/desk/?q=500000000",
    "/desk/?q=typed@example.org",
    "/desk/?kind=REG&channel=web&age=lt1h&overdue=on",
]


@pytest.mark.parametrize("url", QUEUE_URLS)
def test_queue_pages_run_a_fixed_number_of_queries(
    url: str, agent_client: Client, agent: Account
) -> None:
    def grow() -> None:
        for ticket in _tickets(15, assignee=agent):
            Ticket.objects.filter(pk=ticket.pk).update(state=TicketState.IDENTITY_MISMATCH)
        decided = _tickets(15)
        Ticket.objects.filter(pk__in=[t.pk for t in decided]).update(
            state=TicketState.CONFIRMED, decided_at=decided[0].created_at
        )
        _tickets(15)

    _tickets(1)
    _assert_flat(agent_client, lambda: url, grow)


def test_a_queue_page_is_full_at_fifty_rows_and_still_flat(agent_client: Client) -> None:
    _tickets(3)
    agent_client.get("/desk/")  # warm the staff list cache
    small = _count(agent_client, "/desk/")
    _tickets(70)
    assert _count(agent_client, "/desk/") == small
    page = agent_client.get("/desk/").content.decode()
    assert page.count("/desk/tickets/REG-") == 50


def test_ticket_page_runs_a_fixed_number_of_queries(agent_client: Client) -> None:
    ticket = _tickets(1)[0]
    others = []

    def grow() -> None:
        others.extend(_tickets(5))
        Ticket.objects.filter(pk__in=[t.pk for t in others]).update(member=ticket.member)
        for n in range(8):
            event_record(ticket=ticket, kind=EventKind.NOTE, body=f"note {n}")
            OutboxMessage.objects.create(
                ticket=ticket, template=EmailTemplate.ACKNOWLEDGMENT, recipient="a@example.org"
            )

    _assert_flat(
        agent_client,
        lambda: f"/desk/tickets/{ticket.reference}/",
        grow,
        budget=MAX_QUERIES + JOURNAL_INSERT,
    )


def test_members_search_runs_a_fixed_number_of_queries(agent_client: Client) -> None:
    MemberFactory(last_name="Lefèvre")
    _assert_flat(
        agent_client,
        lambda: "/desk/members/?q=lefevre",
        lambda: [MemberFactory(last_name="Lefèvre") for _ in range(12)],
    )


def test_member_page_runs_a_fixed_number_of_queries(agent_client: Client) -> None:
    member = MemberFactory(last_name="Lefèvre")
    TicketFactory(member=member)
    _assert_flat(
        agent_client,
        lambda: f"/desk/members/{member.member_number}/",
        lambda: [TicketFactory(member=member) for _ in range(12)],
    )


def test_new_ticket_form_runs_a_fixed_number_of_queries(agent_client: Client) -> None:
    _assert_flat(agent_client, lambda: "/desk/tickets/new/", lambda: _tickets(10))
