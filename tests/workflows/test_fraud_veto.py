"""The fraud veto hook (workflows/services/veto.py; docs/interfaces.md "Fraud veto hook").

A real HTTP fraud engine on loopback answers each way it can; only a signed, fresh "allow" for
this very request lets an approved risky confirmation be carried out. Everything else fails
closed: the ticket stays in `awaiting_approval`, nothing is carried out or e-mailed, and the
answer is in the history. Transactional tests: the hook refuses to call from inside a
transaction, which a plain `db` test always is.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client

from members.models import Account, AccountStatus
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory, TicketFactory
from tests.second_factor import staff_login
from tickets.models import EventKind, Ticket, TicketKind, TicketState
from tickets.services import TicketActionError, ticket_note
from workflows.models import OutboxMessage
from workflows.services.decisions import ticket_approve, ticket_confirm, ticket_send_back
from workflows.services.veto import TIMEOUT_SECONDS, veto_ask
from workflows.services.webhooks import webhook_sign

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "veto-test-secret-0123456789abcdefghij"
S = TicketState


class FraudEngine:
    """The insurer's fraud engine on loopback; `mode` says how it answers the next request."""

    def __init__(self) -> None:
        self.mode = "allow"
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.note_written_during_call: bool | None = None
        self.reference_to_touch = ""
        self.during_call: Callable[[], None] | None = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                outer.touch_the_ticket()
                outer.answer(self, json.loads(body))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/veto"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def touch_the_ticket(self) -> None:
        """While Guichet waits for us, another desk action on the ticket must go through."""
        if self.during_call is not None:
            try:
                self.during_call()
            finally:
                connections.close_all()
        if not self.reference_to_touch:
            return
        staff = Account.objects.get(username="colleague")
        try:
            ticket_note(reference=self.reference_to_touch, actor=staff, body="during the check")
            self.note_written_during_call = True
        except Exception:
            self.note_written_during_call = False
        finally:
            connections.close_all()

    def answer(self, handler: http.server.BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        mode = self.mode
        decision = mode if mode in ("allow", "deny", "review") else "allow"
        payload: dict[str, Any] = {"request_id": request["request_id"], "decision": decision}
        if mode in ("allow", "deny", "review"):
            payload["reason"] = f"engine says {mode}"
        if mode == "stale":
            payload["request_id"] = "an-earlier-request"
        body = json.dumps(payload).encode()
        if mode == "garbage":
            body = b"<html>allow</html>"
        if mode == "slow":
            time.sleep(TIMEOUT_SECONDS + 2)
        status = {"error": 500, "redirect": 302}.get(mode, 200)
        handler.send_response(status)
        if mode == "redirect":
            handler.send_header("Location", "http://10.0.0.1/allow")
        timestamp = str(int(time.time()))
        signing_secret = "not-the-shared-secret" if mode == "bad_signature" else SECRET
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("X-Guichet-Timestamp", timestamp)
        if mode != "unsigned":
            handler.send_header(
                "X-Guichet-Signature", webhook_sign(signing_secret, timestamp, body)
            )
        handler.end_headers()
        if mode == "trickle":  # a valid answer, one byte every half second: past the deadline
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.5)
            return
        handler.wfile.write(body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(settings: Any) -> Iterator[FraudEngine]:
    server = FraudEngine()
    settings.GUICHET_FRAUD_VETO_URL = server.url
    settings.GUICHET_FRAUD_VETO_SECRET = SECRET
    settings.GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the engine is on loopback
    yield server
    server.stop()


@pytest.fixture
def approver() -> Account:
    return StaffFactory(username="sam", groups=["supervisors", "agents"])


def _awaiting_closure() -> Ticket:
    """An account closure confirmed by one agent: risky, so it waits for a second person."""
    member = MemberFactory(member_number="760000001", last_name="Rousseau", first_name="Inès")
    MemberAccountFactory(member=member, email="ines@example.org")
    ticket = TicketFactory(member=member, kind=TicketKind.CLOSURE)
    maker = StaffFactory(username="alice")
    ticket_confirm(reference=ticket.reference, actor=maker)
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL
    return ticket


def _fraud_checks(ticket: Ticket) -> list[tuple[str, dict[str, Any]]]:
    return [(e.reason, e.data) for e in ticket.events.filter(kind=EventKind.FRAUD_CHECK)]


def _assert_held(ticket: Ticket, *, reason: str, detail: str) -> None:
    """Nothing carried out: still awaiting approval, account open, no e-mail; the answer kept."""
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL
    assert ticket.decided_by is None
    assert Account.objects.get(member=ticket.member).status != AccountStatus.CLOSED
    assert not OutboxMessage.objects.filter(ticket=ticket).exists()
    assert not ticket.events.filter(to_state=S.CONFIRMED).exists()
    [(recorded, data)] = _fraud_checks(ticket)
    assert recorded == reason
    assert data["detail"] == detail
    assert data["risks"] == ["account_closure"]


def test_an_allow_lets_the_approval_carry_out_the_confirmation_after_a_history_row(
    engine: FraudEngine, approver: Account
) -> None:
    ticket = _awaiting_closure()
    ticket_approve(reference=ticket.reference, actor=approver)
    ticket.refresh_from_db()
    assert ticket.state == S.CONFIRMED
    assert Account.objects.get(member=ticket.member).status == AccountStatus.CLOSED
    decided = ticket.events.exclude(kind=EventKind.EMAIL).order_by("id")
    kinds = [(e.kind, e.reason) for e in decided][-3:]
    assert kinds == [
        (EventKind.FRAUD_CHECK, "fraud_check_allow"),
        (EventKind.TRANSITION, "approved"),
        (EventKind.OUTCOME, "account_closed"),
    ]
    [(_, data)] = _fraud_checks(ticket)
    assert data["decision"] == "allow" and data["engine_reason"] == "engine says allow"


def test_the_request_is_signed_and_carries_only_reference_member_id_and_risks(
    engine: FraudEngine, approver: Account
) -> None:
    ticket = _awaiting_closure()
    ticket_approve(reference=ticket.reference, actor=approver)
    [(headers, body)] = engine.requests
    timestamp = headers["X-Guichet-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 60
    assert headers["X-Guichet-Signature"] == webhook_sign(SECRET, timestamp, body)
    sent = json.loads(body)
    assert set(sent) == {"request_id", "reference", "member_number", "risks", "signals"}
    assert (sent["reference"], sent["member_number"], sent["risks"]) == (
        ticket.reference,
        "760000001",
        ["account_closure"],
    )
    assert headers["X-Guichet-Request-Id"] == sent["request_id"]
    for personal in ("Rousseau", "Inès", "ines@example.org", str(ticket.submitted_birth_date)):
        assert personal not in body.decode(), personal


@pytest.mark.parametrize("decision", ["deny", "review"])
def test_a_deny_or_review_holds_the_ticket_for_a_human_look(
    decision: str, engine: FraudEngine, approver: Account
) -> None:
    engine.mode = decision
    ticket = _awaiting_closure()
    returned = ticket_approve(reference=ticket.reference, actor=approver)
    assert returned.state == S.AWAITING_APPROVAL
    _assert_held(ticket, reason=f"fraud_check_{decision}", detail="")
    event = ticket.events.get(kind=EventKind.FRAUD_CHECK)
    assert event.actor == approver and event.body == f"engine says {decision}"


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("error", "http_500"),
        ("redirect", "http_302"),
        ("garbage", "bad_json"),
        ("unsigned", "bad_signature"),
        ("bad_signature", "bad_signature"),
        ("stale", "stale_answer"),
    ],
)
def test_a_bad_answer_fails_closed(
    mode: str, detail: str, engine: FraudEngine, approver: Account
) -> None:
    engine.mode = mode
    ticket = _awaiting_closure()
    ticket_approve(reference=ticket.reference, actor=approver)
    _assert_held(ticket, reason="fraud_check_failed", detail=detail)


@pytest.mark.parametrize("mode", ["slow", "trickle"])
def test_an_engine_that_does_not_answer_within_three_seconds_fails_closed(
    mode: str, engine: FraudEngine, approver: Account
) -> None:
    engine.mode = mode
    ticket = _awaiting_closure()
    started = time.monotonic()
    ticket_approve(reference=ticket.reference, actor=approver)
    elapsed = time.monotonic() - started
    assert TIMEOUT_SECONDS <= elapsed < TIMEOUT_SECONDS + 2.5, elapsed
    _assert_held(ticket, reason="fraud_check_failed", detail="timeout")


def test_an_unreachable_engine_fails_closed(
    engine: FraudEngine, approver: Account, settings: Any
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.GUICHET_FRAUD_VETO_URL = f"http://127.0.0.1:{closed_port}/veto"
    ticket = _awaiting_closure()
    ticket_approve(reference=ticket.reference, actor=approver)
    _assert_held(ticket, reason="fraud_check_failed", detail="unreachable: URLError")


def test_a_private_engine_address_is_refused_unless_allowed(
    engine: FraudEngine, approver: Account, settings: Any
) -> None:
    settings.GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    ticket = _awaiting_closure()
    ticket_approve(reference=ticket.reference, actor=approver)
    _assert_held(ticket, reason="fraud_check_failed", detail="refused_target")
    assert engine.requests == [], "the SSRF guard must stop the request before it leaves"


def test_the_engine_is_never_asked_from_inside_a_transaction(engine: FraudEngine) -> None:
    ticket = _awaiting_closure()
    with transaction.atomic():
        answer = veto_ask(ticket=ticket)
    assert (answer.decision, answer.detail) == ("failed", "asked_inside_a_transaction")
    assert engine.requests == []


def test_no_lock_is_held_on_the_ticket_while_the_engine_thinks(
    engine: FraudEngine, approver: Account
) -> None:
    ticket = _awaiting_closure()
    StaffFactory(username="colleague")
    engine.reference_to_touch = ticket.reference
    ticket_approve(reference=ticket.reference, actor=approver)
    assert engine.note_written_during_call is True
    ticket.refresh_from_db()
    assert ticket.state == S.CONFIRMED
    assert ticket.events.filter(kind=EventKind.NOTE, body="during the check").exists()


def test_an_allow_for_an_approval_request_that_changed_meanwhile_carries_out_nothing(
    engine: FraudEngine, approver: Account
) -> None:
    ticket = _awaiting_closure()
    maker = Account.objects.get(username="alice")

    def sent_back_and_asked_again() -> None:
        ticket_send_back(reference=ticket.reference, actor=approver, reason="other")
        ticket_confirm(reference=ticket.reference, actor=maker)

    engine.during_call = sent_back_and_asked_again
    with pytest.raises(TicketActionError, match="fraud_check_stale"):
        ticket_approve(reference=ticket.reference, actor=approver)
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL
    assert Account.objects.get(member=ticket.member).status != AccountStatus.CLOSED
    assert not ticket.events.filter(to_state=S.CONFIRMED).exists()
    assert _fraud_checks(ticket) == []  # the allow was about another request: not recorded


def test_a_refused_approval_asks_the_engine_nothing(engine: FraudEngine) -> None:
    ticket = _awaiting_closure()
    maker = Account.objects.get(username="alice")
    with pytest.raises(Exception, match="own_confirmation"):
        ticket_approve(reference=ticket.reference, actor=maker)
    assert engine.requests == []


def test_without_the_hook_an_approval_asks_nobody(approver: Account) -> None:
    ticket = _awaiting_closure()
    ticket_approve(reference=ticket.reference, actor=approver)
    ticket.refresh_from_db()
    assert ticket.state == S.CONFIRMED
    assert _fraud_checks(ticket) == []


def test_the_desk_says_the_ticket_is_held_and_shows_the_answer(
    engine: FraudEngine, approver: Account, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "en"
    engine.mode = "deny"
    ticket = _awaiting_closure()
    client = staff_login(Client(), approver)
    response = client.post(f"/desk/tickets/{ticket.reference}/approve/", follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "The fraud check did not allow this confirmation" in page
    assert "fraud_check_deny" in page and "engine says deny" in page
    _assert_held(ticket, reason="fraud_check_deny", detail="")
