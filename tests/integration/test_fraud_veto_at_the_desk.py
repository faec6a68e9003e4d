"""Issue 14 on real services: the fraud veto hook at the desk, over HTTP, with a real worker.

A supervisor approves a risky confirmation (forgotten codes asked by phone) while a loopback
fraud engine answers "review": nothing is carried out, no codes are e-mailed, the ticket waits
for a human look with the answer in its history. Once the engine allows, the same approval goes
through and the real worker sends the codes over SMTP.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from typing import Any

from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory, TicketFactory
from tests.integration.harness import (
    CeleryWorker,
    SmtpSink,
    outbox_template_of,
    wait_outbox_idle,
)
from tests.integration.steps import desk_action, desk_login
from tickets.models import Channel, EventKind, Ticket, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage

SECRET = "desk-veto-secret-0123456789abcdefghijkl"
ENGINE_PORT = 21232  # a spare port of this suite's range


def _sign(timestamp: str, body: bytes) -> str:
    """The documented scheme (docs/interfaces.md, "Fraud veto hook"), written out by hand."""
    digest = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


class Engine:
    """The insurer's fraud engine: checks Guichet's signature, answers `decision`, signed."""

    def __init__(self) -> None:
        self.decision = "review"
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers["X-Guichet-Signature"] != _sign(
                    self.headers["X-Guichet-Timestamp"], raw
                ):
                    self.send_response(401)
                    self.end_headers()
                    return
                request = json.loads(raw)
                outer.seen.append(request)
                body = json.dumps(
                    {"request_id": request["request_id"], "decision": outer.decision}
                ).encode()
                timestamp = str(int(time.time()))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Guichet-Timestamp", timestamp)
                self.send_header("X-Guichet-Signature", _sign(timestamp, body))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", ENGINE_PORT), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_approval_the_engine_does_not_allow_is_held_then_goes_through_once_allowed(
    live_app: Any, celery_worker: CeleryWorker, smtp_sink: SmtpSink, settings: Any
) -> None:
    settings.GUICHET_FRAUD_VETO_URL = f"http://127.0.0.1:{ENGINE_PORT}/veto"
    settings.GUICHET_FRAUD_VETO_SECRET = SECRET
    settings.GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the engine is on loopback
    member = MemberFactory(member_number="750300400")
    MemberAccountFactory(member=member, email="onfile.veto@example.org")
    ticket = TicketFactory(member=member, kind=TicketKind.RECOVERY, channel=Channel.PHONE)
    StaffFactory(username="agent-veto")
    StaffFactory(username="super-veto", groups=["supervisors", "agents"])
    engine = Engine()
    try:
        agent = live_app.client(language="en")
        desk_login(agent, "agent-veto", "staff password 123")
        desk_action(agent, ticket.reference, "confirm")
        assert Ticket.objects.get(pk=ticket.pk).state == TicketState.AWAITING_APPROVAL

        supervisor = live_app.client(language="en")
        desk_login(supervisor, "super-veto", "staff password 123")
        held = desk_action(supervisor, ticket.reference, "approve")
        assert "The fraud check did not allow this confirmation" in held.text
        assert "fraud_check_review" in held.text
        assert Ticket.objects.get(pk=ticket.pk).state == TicketState.AWAITING_APPROVAL
        assert not OutboxMessage.objects.filter(
            ticket=ticket, template=EmailTemplate.CREDENTIALS
        ).exists()

        engine.decision = "allow"
        done = desk_action(supervisor, ticket.reference, "approve")
        assert "Approved" in done.text
    finally:
        engine.stop()
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.CONFIRMED
    codes = smtp_sink.wait_for(
        lambda m: "onfile.veto@example.org" in m["To"] and outbox_template_of(m) == "credentials"
    )
    assert ticket.reference in codes["Subject"]
    wait_outbox_idle()

    assert [request["reference"] for request in engine.seen] == [ticket.reference] * 2
    assert {request["member_number"] for request in engine.seen} == {"750300400"}
    assert all(request["risks"] == ["staff_typed"] for request in engine.seen)
    checks = list(
        ticket.events.filter(kind=EventKind.FRAUD_CHECK)
        .order_by("id")
        .values_list("reason", "actor__username")
    )
    assert checks == [("fraud_check_review", "super-veto"), ("fraud_check_allow", "super-veto")]
