"""Webhooks: outbox with the event, signed POSTs to a loopback receiver, retries, SSRF guard."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone

from api.clients import client_create, client_revoke
from tests.api.conftest import token_for
from tests.factories import MemberFactory, TicketFactory
from tickets.models import EventKind
from tickets.services import event_record
from workflows.models import WebhookDelivery, WebhookStatus, WebhookSubscription
from workflows.services.webhooks import (
    _address_refused,
    webhook_deliver,
    webhook_replay,
    webhook_retry_delay,
    webhook_subscribe,
)

pytestmark = pytest.mark.django_db


def verify(secret: str, headers: Any, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """The receiver's check, as documented in docs/interfaces.md ("Webhooks")."""
    timestamp = headers["X-Guichet-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    given = headers["X-Guichet-Signature"].removeprefix("v1=")
    return abs(now - int(timestamp)) <= tolerance and hmac.compare_digest(
        expected.hexdigest(), given
    )


class Receiver:
    """A real HTTP server on loopback that records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def _event(**kwargs: Any) -> int:
    ticket = TicketFactory(member=MemberFactory(member_number="730000001"))
    return event_record(ticket=ticket, **kwargs).pk


@override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_transition_is_delivered_once_signed_without_personal_data(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscription, secret = webhook_subscribe(
        client_id="gc_x", url=receiver.url, event_types=["request.transition"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        event_id = _event(kind=EventKind.TRANSITION, from_state="pending", to_state="confirmed")
        _event(kind=EventKind.NOTE, body="not told")
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert verify(secret, headers, body, now=int(timezone.now().timestamp()))
    assert not verify("another secret", headers, body, now=int(timezone.now().timestamp()))
    assert headers["X-Guichet-Event-Id"] == str(event_id)
    payload = json.loads(body)
    assert payload["to_state"] == "confirmed"
    assert payload["member_number"] == "730000001"
    assert "Martin" not in body.decode() and "@" not in body.decode()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert secret not in subscription.secret_encrypted


def test_the_delivery_is_written_in_the_events_transaction() -> None:
    with override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True):
        webhook_subscribe(
            client_id="gc_x", url="http://127.0.0.1:9/", event_types=["request.received"]
        )
    with pytest.raises(RuntimeError), transaction.atomic():
        _event(kind=EventKind.CREATED, to_state="pending")
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the cause rolls back")
    assert not WebhookDelivery.objects.exists()


@override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True, GUICHET_WEBHOOK_MAX_ATTEMPTS=3)
def test_a_receiver_that_is_down_gets_the_event_later_exactly_once(receiver: Receiver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"  # nothing listens there
    subscription, _ = webhook_subscribe(
        client_id="gc_x", url=down_url, event_types=["request.received"]
    )
    _event(kind=EventKind.CREATED, to_state="pending")
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.PENDING and delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)  # backoff
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"  # not due yet
    WebhookSubscription.objects.filter(pk=subscription.pk).update(url=receiver.url)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"  # a redelivered task
    assert len(receiver.received) == 1


@override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True, GUICHET_WEBHOOK_MAX_ATTEMPTS=2)
def test_an_error_answer_is_retried_then_given_up_and_can_be_replayed(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.status = 500
    webhook_subscribe(client_id="gc_x", url=receiver.url, event_types=["request.received"])
    _event(kind=EventKind.CREATED, to_state="pending")
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "HTTP 500")
    receiver.status = 204
    with django_capture_on_commit_callbacks(execute=True):
        webhook_replay(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert len(receiver.received) == 3


def test_backoff_doubles_and_is_capped() -> None:
    delays = [webhook_retry_delay(attempts=n).total_seconds() for n in (1, 2, 3, 12)]
    assert delays == [30, 60, 120, 3600]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        # IPv6 forms that lead to a private IPv4 address through a gateway or a mapping.
        "http://[::ffff:10.0.0.1]/hook",
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
        "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
        "http://[::a00:1]/hook",  # IPv4-compatible 10.0.0.1
        "http://[64:ff9b:1::1]/hook",  # NAT64 local use
        "ftp://example.org/hook",
    ],
)
def test_private_and_loopback_targets_are_refused(url: str, client: Client) -> None:
    credentials = client_create(name="crm", scopes=["events:read"])
    response = client.post(
        "/api/v1/webhooks",
        {"url": url, "event_types": ["request.received"]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(client, credentials)}"},
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert not WebhookSubscription.objects.exists()
    # The refusal names no address: it must not map the insurer's internal DNS for a client.
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254"):
        if address not in url:
            assert address not in response.content.decode()


def test_a_target_that_turned_private_is_refused_at_send_time() -> None:
    with override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True):
        webhook_subscribe(
            client_id="gc_x", url="http://127.0.0.1:9/", event_types=["request.received"]
        )
    _event(kind=EventKind.CREATED, to_state="pending")
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert "non-public address" in delivery.last_error
    assert "127.0.0.1" not in delivery.last_error  # the client's log names no address


@override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_subscriptions_and_their_log_belong_to_their_client(client: Client) -> None:
    mine = client_create(name="crm", scopes=["events:read"])
    other = client_create(name="fraud", scopes=["events:read"])
    me = {"Authorization": f"Bearer {token_for(client, mine)}"}
    them = {"Authorization": f"Bearer {token_for(client, other)}"}
    created = client.post(
        "/api/v1/webhooks",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["email.sent"]},
        content_type="application/json",
        headers=me,
    ).json()
    assert created["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", headers=me).json()
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert client.get("/api/v1/webhooks", headers=them).json() == []
    log = f"/api/v1/webhooks/{created['id']}/deliveries"
    assert client.get(log, headers=me).json() == []
    assert client.get(log, headers=them).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{created['id']}", headers=them).status_code == 404
    assert client.delete("/api/v1/webhooks/²", headers=me).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{created['id']}", headers=me).status_code == 204
    assert client.get("/api/v1/webhooks", headers=me).json() == []


@override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_revoked_client_gets_no_more_events(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    credentials = client_create(name="crm", scopes=["events:read"])
    webhook_subscribe(
        client_id=credentials.client_id, url=receiver.url, event_types=["request.received"]
    )
    client_revoke(client_id=credentials.client_id)
    with django_capture_on_commit_callbacks(execute=True):
        _event(kind=EventKind.CREATED, to_state="pending")
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


@override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
def test_a_delivery_queued_before_its_subscription_stopped_is_never_sent(
    receiver: Receiver,
) -> None:
    credentials = client_create(name="crm", scopes=["events:read"])
    webhook_subscribe(
        client_id=credentials.client_id, url=receiver.url, event_types=["request.received"]
    )
    _event(kind=EventKind.CREATED, to_state="pending")  # queued, not yet sent
    delivery = WebhookDelivery.objects.get()
    client_revoke(client_id=credentials.client_id)
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.FAILED and "stopped" in delivery.last_error


def _rebinding(public: str) -> Any:
    """A DNS answer that changes between the check and the connection (DNS rebinding): the
    first lookup of `rebind.example` says `public`, the next ones say loopback."""
    real = socket.getaddrinfo
    calls = {"n": 0}

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        calls["n"] += 1
        address = public if calls["n"] == 1 else "127.0.0.1"
        return real(address, port, *args, **kwargs)

    return mock.patch("socket.getaddrinfo", side_effect=lookup)


def test_a_host_that_rebinds_to_loopback_after_the_check_is_never_reached(
    receiver: Receiver,
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    with override_settings(GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True):
        webhook_subscribe(
            client_id="gc_x",
            url=f"http://rebind.example:{port}/hook",
            event_types=["request.received"],
        )
    _event(kind=EventKind.CREATED, to_state="pending")
    delivery = WebhookDelivery.objects.get()
    with _rebinding("93.184.215.14"):
        assert webhook_deliver(delivery_id=delivery.pk) == "retrying"
    assert receiver.received == []
    delivery.refresh_from_db()
    assert "non-public address" in delivery.last_error


@pytest.mark.parametrize(
    "address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700:4700::1111", "8.8.8.8"]
)
def test_public_addresses_stay_allowed_whatever_their_form(address: str) -> None:
    assert _address_refused(address) is None
