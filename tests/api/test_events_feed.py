"""The events feed: keyset pages in a stable order, each event with an id, no personal data."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from tests.factories import MemberFactory, TicketFactory
from tickets.models import EventKind
from tickets.services import event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settled")]


@pytest.fixture
def settled() -> object:
    with override_settings(GUICHET_API_EVENTS_SETTLE_SECONDS=0):
        yield


def _history(count: int) -> list[str]:
    """`count` tickets, each with a creation, a transition and an e-mail outcome."""
    references = []
    for n in range(count):
        member = MemberFactory(member_number=f"71000000{n}", email=f"private{n}@example.org")
        ticket = TicketFactory(member=member, submitted_email=f"typed{n}@example.org")
        event_record(ticket=ticket, kind=EventKind.CREATED, to_state="pending")
        event_record(
            ticket=ticket, kind=EventKind.TRANSITION, from_state="pending", to_state="confirmed"
        )
        event_record(ticket=ticket, kind=EventKind.NOTE, body="internal note, never in the feed")
        event_record(
            ticket=ticket,
            kind=EventKind.EMAIL,
            reason="sent",
            data={"template": "credentials", "recipient": "pr***@example.org"},
        )
        references.append(ticket.reference)
    return references


def _read_all(api: Client, limit: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    cursor = "0"
    while True:
        page = api.get("/api/v1/events", {"after": cursor, "limit": limit}).json()
        events.extend(page["events"])
        assert int(page["next_cursor"]) >= int(cursor)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return events


def test_pages_cover_every_event_once_in_a_stable_order(api: Client) -> None:
    references = _history(4)
    whole = api.get("/api/v1/events", {"limit": 500}).json()["events"]
    assert [e["type"] for e in whole[:3]] == [
        "request.received",
        "request.transition",
        "email.sent",
    ]
    assert len(whole) == 12  # notes are not events of the feed
    ids = [int(e["id"]) for e in whole]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert _read_all(api, limit=5) == whole  # keyset pages: nothing skipped, nothing twice
    assert _read_all(api, limit=5) == whole  # and the same again
    assert {e["reference"] for e in whole} == set(references)


def test_an_event_carries_no_personal_data_beyond_reference_and_member_id(api: Client) -> None:
    _history(1)
    text = json.dumps(api.get("/api/v1/events").json())
    for private in ("private0@", "typed0@", "Martin", "Zo", "internal note", "pr***"):
        assert private not in text
    event = api.get("/api/v1/events").json()["events"][2]
    assert event["member_number"] == "710000000"
    assert event["email_template"] == "credentials"


def test_a_cursor_past_the_end_gives_an_empty_page_that_keeps_the_cursor(api: Client) -> None:
    _history(1)
    page = api.get("/api/v1/events", {"after": "999999"}).json()
    assert page == {"events": [], "next_cursor": "999999", "has_more": False}


def test_events_younger_than_the_settle_delay_wait_for_the_next_read(api: Client) -> None:
    _history(1)
    with override_settings(GUICHET_API_EVENTS_SETTLE_SECONDS=3600):
        assert api.get("/api/v1/events").json()["events"] == []
    assert len(api.get("/api/v1/events").json()["events"]) == 3


@pytest.mark.parametrize(
    "query",
    [
        {"after": "-1"},
        {"after": "abc"},
        {"limit": "0"},
        {"limit": "501"},
        {"after": "9" * 30},
        {"after": "²"},
        {"limit": "²"},
    ],
)
def test_a_bad_cursor_or_limit_is_a_problem(api: Client, query: dict[str, str]) -> None:
    response = api.get("/api/v1/events", query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_a_page_costs_the_same_queries_whatever_its_length(api: Client) -> None:
    _history(6)
    counts = []
    for limit in (2, 18):
        with CaptureQueriesContext(connection) as queries:
            assert len(api.get("/api/v1/events", {"limit": limit}).json()["events"]) == limit
        counts.append(len(queries))
    assert counts[0] == counts[1]
