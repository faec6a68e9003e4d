"""Every history row written during a request carries the request's id: the one RequestIdMiddleware
validated or generated, echoed in X-Request-ID and written in the JSON logs (docs/operations.md,
"Logs"); a task carries it to the worker, whose history rows carry it too."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client, override_settings

from core.logging import (
    JSONFormatter,
    RequestIdFilter,
    _request_id_in_task,
    _request_id_out_of_task,
)
from members.models import Account
from tests.factories import MemberFactory, TicketFactory
from tests.requests import registration_form
from tests.second_factor import staff_login
from tickets.models import EventKind, Ticket, TicketEvent
from tickets.services import event_record

pytestmark = pytest.mark.django_db

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def _desk(agent: Account) -> Client:
    client = Client()
    staff_login(client, agent)
    return client


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=1)
def test_a_desk_action_writes_the_proxys_request_id_on_its_history_row(agent: Account) -> None:
    ticket = TicketFactory()
    response = _desk(agent).post(
        f"/desk/tickets/{ticket.reference}/claim/", HTTP_X_REQUEST_ID="lb-7c1d2e3f-claim"
    )
    assert response.status_code == 302
    assert response["X-Request-ID"] == "lb-7c1d2e3f-claim"
    event = ticket.events.get(kind=EventKind.CLAIM)
    assert event.request_id == "lb-7c1d2e3f-claim"


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=1)
def test_the_longest_id_the_middleware_accepts_fits_the_history_row_whole(agent: Account) -> None:
    longest = "lb-" + "9" * 125
    ticket = TicketFactory()
    response = _desk(agent).post(
        f"/desk/tickets/{ticket.reference}/claim/", HTTP_X_REQUEST_ID=longest
    )
    assert response["X-Request-ID"] == longest
    assert ticket.events.get(kind=EventKind.CLAIM).request_id == longest


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=1)
@pytest.mark.parametrize(
    "offered",
    ["x\nFAKE LOG LINE", "a" * 200, "short", "semi;colon-12345"],
    ids=["control-characters", "oversized", "too-short", "bad-character"],
)
def test_a_forged_or_oversized_header_is_replaced_on_the_row_and_in_the_response(
    agent: Account, offered: str
) -> None:
    ticket = TicketFactory()
    response = _desk(agent).post(
        f"/desk/tickets/{ticket.reference}/claim/", HTTP_X_REQUEST_ID=offered
    )
    generated = response["X-Request-ID"]
    assert GENERATED.fullmatch(generated)
    event = ticket.events.get(kind=EventKind.CLAIM)
    assert event.request_id == generated
    assert offered[:64] != event.request_id


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=0)
def test_without_a_trusted_proxy_the_row_carries_the_generated_id_not_the_clients(
    agent: Account,
) -> None:
    ticket = TicketFactory()
    response = _desk(agent).post(
        f"/desk/tickets/{ticket.reference}/claim/", HTTP_X_REQUEST_ID="chosen-by-the-client"
    )
    event = ticket.events.get(kind=EventKind.CLAIM)
    assert GENERATED.fullmatch(event.request_id)
    assert event.request_id == response["X-Request-ID"]


def test_a_refused_desk_action_logs_json_and_records_history_under_the_response_id(
    agent: Account, second_agent: Account, json_log: io.StringIO
) -> None:
    ticket = TicketFactory()
    assert _desk(agent).post(f"/desk/tickets/{ticket.reference}/claim/").status_code == 302
    response = _desk(second_agent).post(f"/desk/tickets/{ticket.reference}/claim/")
    request_id = response["X-Request-ID"]
    assert GENERATED.fullmatch(request_id)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    refused = [e for e in lines if e["message"].startswith("desk action refused action=claim")]
    assert len(refused) == 1, lines
    assert refused[0]["request_id"] == request_id
    row = ticket.events.get(kind=EventKind.REFUSED)
    assert row.request_id == request_id
    assert ticket.events.get(kind=EventKind.CLAIM).request_id not in ("", request_id)


def test_every_history_row_of_a_portal_submission_carries_the_response_id(
    django_capture_on_commit_callbacks: Any,
) -> None:
    MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/register/", registration_form())
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    ids = set(ticket.events.values_list("request_id", flat=True))
    assert ids == {response["X-Request-ID"]}
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_a_history_row_written_in_a_task_carries_the_id_the_task_header_brought() -> None:
    ticket = TicketFactory()
    task = SimpleNamespace(request=SimpleNamespace(guichet_request_id="req-from-the-web-01"))
    _request_id_in_task(task_id="t-history", task=task)
    try:
        event = event_record(ticket=ticket, kind=EventKind.NOTE, body="from the worker")
    finally:
        _request_id_out_of_task(task_id="t-history")
    assert TicketEvent.objects.get(pk=event.pk).request_id == "req-from-the-web-01"
    outside = event_record(ticket=ticket, kind=EventKind.NOTE, body="no request")
    assert outside.request_id == ""


def test_an_explicit_request_id_still_wins() -> None:
    ticket = TicketFactory()
    task = SimpleNamespace(request=SimpleNamespace(guichet_request_id="req-ambient-000001"))
    _request_id_in_task(task_id="t-explicit", task=task)
    try:
        event = event_record(ticket=ticket, kind=EventKind.NOTE, body="x", request_id="given-1")
    finally:
        _request_id_out_of_task(task_id="t-explicit")
    assert event.request_id == "given-1"
