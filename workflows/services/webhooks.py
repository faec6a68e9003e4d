"""Webhooks: signed POSTs of public events, through an outbox written with the event.

Each history row told outside (workflows.services.events) becomes one WebhookDelivery per
matching subscription, in the transaction that records the event; after commit the delivery is
handed to the workers, retried with exponential backoff, and its every attempt is logged on the
row. Targets on private, loopback or link-local addresses are refused (SSRF) unless
GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS is on. The receiver deduplicates by `X-Guichet-Event-Id`
(at-least-once).

Signature (docs/interfaces.md "Webhooks"): `X-Guichet-Signature: v1=<hex>` where
hex = HMAC-SHA256(secret, f"{X-Guichet-Timestamp}." + raw body).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.logging import bound_to_request_id
from tickets.models import TicketEvent
from workflows.dispatch import publish
from workflows.models import WebhookDelivery, WebhookStatus, WebhookSubscription
from workflows.services.events import EVENT_TYPES, PUBLIC_EVENT_KINDS, event_public, event_type

logger = logging.getLogger(__name__)

WEBHOOK_DELIVERY = "webhook-delivery"
TIMEOUT_SECONDS = 5
LEASE_SECONDS = 60


class WebhookError(Exception):
    """A subscription that cannot be made (bad URL, refused target, unknown event type)."""


def _fernet() -> Fernet:
    key = hashlib.sha256(b"guichet-webhook-secret:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def webhook_secret(subscription: WebhookSubscription) -> str:
    return _fernet().decrypt(subscription.secret_encrypted.encode()).decode()


# IPv6 ranges that carry an IPv4 address a gateway may deliver to (RFC 6052 NAT64, the
# deprecated IPv4-compatible form), and NAT64's local-use range (RFC 8215), never public.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, 6to4, NAT64, Teredo client...)."""
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address in _NAT64_WELL_KNOWN or address in _IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.teredo is not None:
        embedded.extend(address.teredo)
    return [v4 for v4 in embedded if v4 is not None]


def _address_refused(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if it is not a public one (private, loopback, link-local, multicast...),
    also when it is an IPv6 address that leads to such an IPv4 one (`64:ff9b::7f00:1`)."""
    address = ipaddress.ip_address(text.split("%")[0])
    if not address.is_global or address.is_multicast:
        return address
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return address
        for v4 in _embedded_ipv4(address):
            if not v4.is_global or v4.is_multicast:
                return address
    return None


# What a client reads (the API's answer, its delivery log): never the address a name resolved
# to, which would make the refusal an oracle for the insurer's internal DNS; the log has it.
NON_PUBLIC_TARGET = "the host resolves to a non-public address"


def _refused(hostname: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    logger.warning("webhook target %s refused: it resolves to %s", hostname, address)
    return NON_PUBLIC_TARGET


def target_check(url: str) -> None:
    """Refuse a URL that is not http(s) or that resolves to a non-public address.

    A name can resolve differently a moment later (DNS rebinding): the connection itself checks
    the address it reached again (`guarded_opener`)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("the URL must be http or https with a host")
    if settings.GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookError("the host does not resolve") from None
    for info in infos:
        address = _address_refused(str(info[4][0]))
        if address is not None:
            raise WebhookError(_refused(parts.hostname, address))


class TargetRefused(OSError):
    """The connection reached a non-public address (the name resolved anew since the check)."""


def _peer_check(connection: http.client.HTTPConnection) -> None:
    """After the TCP connect, before a byte of the request: the address really reached."""
    if settings.GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS or connection.sock is None:
        return
    address = _address_refused(str(connection.sock.getpeername()[0]))
    if address is not None:
        connection.close()
        raise TargetRefused(_refused(connection.host, address))


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _peer_check(self)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _peer_check(self)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPSConnection, req)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, never followed (it could point inside the network)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def guarded_opener() -> urllib.request.OpenerDirector:
    """An opener for outgoing calls to configured URLs: no redirect followed, and the address
    each connection reached checked like the URL was (SSRF, including DNS rebinding)."""
    return urllib.request.build_opener(_NoRedirect, _GuardedHTTPHandler, _GuardedHTTPSHandler)


def webhook_subscribe(
    *, client_id: str, url: str, event_types: list[str]
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (shown once; stored encrypted)."""
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown or not event_types:
        raise WebhookError(f"unknown or missing event type(s): {', '.join(unknown) or '-'}")
    target_check(url)
    secret = "whsec_" + secrets.token_urlsafe(32)
    subscription = WebhookSubscription.objects.create(
        client_id=client_id,
        url=url,
        event_types=sorted(set(event_types)),
        secret_encrypted=_fernet().encrypt(secret.encode()).decode(),
    )
    return subscription, secret


def webhook_subscriptions_stop(*, client_id: str) -> int:
    """Stop every subscription of a client (revoked): nothing more is queued or sent to it."""
    return WebhookSubscription.objects.filter(client_id=client_id, active=True).update(active=False)


def webhooks_enqueue(event: TicketEvent) -> list[int]:
    """Write the deliveries of one history row, in its transaction; dispatch them after commit."""
    if event.kind not in PUBLIC_EVENT_KINDS:
        return []
    kind = event_type(event)
    subscriptions = [
        s for s in WebhookSubscription.objects.filter(active=True) if kind in s.event_types
    ]
    if not subscriptions:
        return []
    payload = event_public(event)
    ids = []
    for subscription in subscriptions:
        delivery = WebhookDelivery.objects.create(
            subscription=subscription, event_id=event.pk, payload=payload
        )
        ids.append(delivery.pk)
    transaction.on_commit(bound_to_request_id(lambda: _dispatch_all(ids)))
    return ids


def _dispatch_all(ids: list[int]) -> None:
    for delivery_id in ids:
        webhook_dispatch(delivery_id=delivery_id)


def webhook_dispatch(*, delivery_id: int) -> bool:
    """Hand a delivery to the workers; if the broker is down the sweep will retry."""
    try:
        publish(name=WEBHOOK_DELIVERY, item_id=delivery_id)
    except Exception:  # broker down: the row stays pending, the sweep finds it
        logger.warning("webhook dispatch failed for delivery %s; the sweep will retry", delivery_id)
        return False
    return True


def webhook_sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def webhook_retry_delay(*, attempts: int) -> timedelta:
    """Exponential backoff from GUICHET_WEBHOOK_RETRY_BASE_SECONDS, capped at one hour."""
    base = settings.GUICHET_WEBHOOK_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    claimable = Q(status=WebhookStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=WebhookStatus.SENDING, lease_until__lt=now
    )
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("subscription")
            .filter(claimable, pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        delivery.status = WebhookStatus.SENDING
        delivery.lease_until = now + timedelta(seconds=LEASE_SECONDS)
        delivery.attempts += 1
        delivery.save(update_fields=["status", "lease_until", "attempts"])
    return delivery


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    opener = guarded_opener()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def webhook_deliver(*, delivery_id: int) -> str:
    """Send one delivery once it is due; record the answer; schedule a retry or give up."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "skipped"
    subscription = delivery.subscription
    if not subscription.active:
        # Stopped (by its client, or the client revoked) after this delivery was queued.
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookStatus.SENDING, attempts=delivery.attempts
        ).update(status=WebhookStatus.FAILED, last_error="subscription stopped", lease_until=None)
        return "failed"
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Guichet-Webhooks/1",
        "X-Guichet-Event-Id": str(delivery.event_id),
        "X-Guichet-Timestamp": timestamp,
        "X-Guichet-Signature": webhook_sign(webhook_secret(subscription), timestamp, body),
    }
    status_code: int | None = None
    error = ""
    try:
        target_check(subscription.url)
        status_code = _post(subscription.url, body, headers)
    except (WebhookError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    now = timezone.now()
    ok = status_code is not None and 200 <= status_code < 300
    final = ok or delivery.attempts >= settings.GUICHET_WEBHOOK_MAX_ATTEMPTS
    WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookStatus.SENDING, attempts=delivery.attempts
    ).update(
        status=WebhookStatus.DELIVERED
        if ok
        else (WebhookStatus.FAILED if final else WebhookStatus.PENDING),
        last_status_code=status_code,
        last_error=error or ("" if ok else f"HTTP {status_code}"),
        lease_until=None,
        delivered_at=now if ok else None,
        next_attempt_at=now + webhook_retry_delay(attempts=delivery.attempts),
    )
    return "delivered" if ok else ("failed" if final else "retrying")


def webhook_due_ids(*, limit: int = 500) -> list[int]:
    """Deliveries the sweep must dispatch: pending and due, or claimed by a vanished worker."""
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=WebhookStatus.SENDING, lease_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_replay(*, delivery_id: int) -> None:
    """Send a delivery again (admin action), whatever its state; the receiver deduplicates."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookStatus.PENDING, next_attempt_at=timezone.now(), lease_until=None
        )
        transaction.on_commit(
            bound_to_request_id(lambda: webhook_dispatch(delivery_id=delivery_id))
        )
