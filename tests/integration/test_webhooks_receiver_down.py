"""Issue 14 on real services: webhooks reach a receiver that was down for a minute, each event
exactly once, signed with the documented scheme (docs/interfaces.md, "Webhooks").

PostgreSQL, Redis, a real worker (its own, with a 1 s backoff base so retries fall inside the
window and right after it), the app over HTTP for the subscription, and a real HTTP receiver on
loopback that checks every signature and deduplicates by event id, as a subscriber must.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections import Counter
from typing import Any

from tests.factories import MemberFactory, StaffFactory, TicketFactory
from tests.integration.steps import api_bearer, api_call, api_client_create
from workflows.models import WebhookDelivery, WebhookStatus
from workflows.services.decisions import ticket_flag_mismatch, ticket_reject

# A spare port of this suite's range: nobody listens on it until the receiver comes up.
RECEIVER_PORT = 21231
DOWN_SECONDS = 60


def signature_valid(secret: str, headers: Any, body: bytes, tolerance: int = 300) -> bool:
    """The documented receiver check (docs/interfaces.md), verbatim."""
    timestamp = headers["X-Guichet-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    given = headers["X-Guichet-Signature"].removeprefix("v1=")
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected.hexdigest(), given)


class Receiver:
    """A subscriber's endpoint: verifies, deduplicates by X-Guichet-Event-Id, records."""

    def __init__(self, port: int, secret: str) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.posts = 0
        self.bad_signatures = 0
        self.accepted: Counter[str] = Counter()  # event id -> 2xx answers given
        self.events: dict[str, dict[str, Any]] = {}  # first copy of each event, by id
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.posts += 1
                    if not signature_valid(outer.secret, self.headers, body):
                        outer.bad_signatures += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                    event_id = self.headers["X-Guichet-Event-Id"]
                    outer.accepted[event_id] += 1
                    outer.events.setdefault(event_id, json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout:.0f} s")
        time.sleep(0.5)


def test_every_event_reaches_a_receiver_down_for_a_minute_exactly_once_and_signed(
    live_app: Any, celery_worker_factory: Any, smtp_sink: Any, settings: Any
) -> None:
    settings.GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on loopback
    celery_worker_factory(
        "webhooks",
        env={
            "GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            "GUICHET_WEBHOOK_RETRY_BASE_SECONDS": "1",  # 1, 2, 4 … 32, 64 s
            "GUICHET_WEBHOOK_MAX_ATTEMPTS": "20",
        },
    )
    crm = api_client_create("crm", "events:read")
    bearer = api_bearer(live_app.url, crm["client_id"], crm["client_secret"])
    url = f"http://127.0.0.1:{RECEIVER_PORT}/guichet-events"
    status, _, subscription = api_call(
        live_app.url,
        "/api/v1/webhooks",
        body=json.dumps(
            {"url": url, "event_types": ["request.transition", "email.sent", "email.failed"]}
        ).encode(),
        headers=bearer,
    )
    assert status == 201, subscription

    # The receiver is down (port closed) while tickets move, spread over the minute.
    agent = StaffFactory(username="agent-hooks")
    tickets = [
        TicketFactory(
            member=MemberFactory(member_number=f"74000000{i}"), submitted_email=f"m{i}@example.org"
        )
        for i in range(3)
    ]
    started = time.monotonic()
    steps = [
        (0, lambda: ticket_flag_mismatch(reference=tickets[0].reference, actor=agent)),
        (15, lambda: ticket_reject(reference=tickets[0].reference, actor=agent, reason="other")),
        (30, lambda: ticket_flag_mismatch(reference=tickets[1].reference, actor=agent)),
        (40, lambda: ticket_reject(reference=tickets[2].reference, actor=agent, reason="other")),
        (45, lambda: ticket_reject(reference=tickets[1].reference, actor=agent, reason="other")),
    ]
    for at, step in steps:
        time.sleep(max(0.0, started + at - time.monotonic()))
        step()
    # The rejection e-mails go out while the receiver is down: their outcomes are events too.
    deliveries = WebhookDelivery.objects.filter(subscription_id=subscription["id"])
    expected = 5 + 3  # five transitions, three e-mails sent
    _wait(lambda: deliveries.count() == expected, 30, "a delivery row for each event")
    time.sleep(max(0.0, started + DOWN_SECONDS - time.monotonic()))

    # Down for the minute: nothing in, every row tried and refused, the older ones retried.
    assert not deliveries.filter(status=WebhookStatus.DELIVERED).exists(), "nothing can be in"
    tried = dict(deliveries.values_list("event_id", "attempts"))
    transitions = set(
        deliveries.filter(payload__type="request.transition").values_list("event_id", flat=True)
    )
    assert len(transitions) == 5
    assert all(tried[event_id] >= 2 for event_id in transitions), f"no retry in the window: {tried}"
    assert all(
        "refused" in error.lower() for error in deliveries.values_list("last_error", flat=True)
    ), list(deliveries.values_list("last_error", flat=True))

    receiver = Receiver(RECEIVER_PORT, subscription["secret"])
    try:
        _wait(
            lambda: deliveries.filter(status=WebhookStatus.DELIVERED).count() == expected,
            150,
            "every delivery delivered",
        )
        time.sleep(5)  # room for a stray duplicate to arrive (there must be none)
    finally:
        receiver.stop()

    event_ids = {str(pk) for pk in deliveries.values_list("event_id", flat=True)}
    assert set(receiver.events) == event_ids  # every event, deduplicated by id
    assert all(count == 1 for count in receiver.accepted.values()), receiver.accepted
    assert receiver.bad_signatures == 0
    types = Counter(event["type"] for event in receiver.events.values())
    assert types == {"request.transition": 5, "email.sent": 3}
    assert {e["reference"] for e in receiver.events.values()} == {t.reference for t in tickets}
    # The delivery log: every row delivered, each after the refused attempts of the window.
    for row in deliveries:
        assert row.status == WebhookStatus.DELIVERED
        assert (row.last_status_code, row.last_error) == (204, "")
        assert row.delivered_at is not None
        assert row.attempts > tried[row.event_id] >= 1, (row.event_id, row.attempts, tried)
