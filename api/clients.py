"""API clients: create, rotate, revoke, authenticate; access tokens issued and resolved.

Secrets and tokens are 256-bit values from `secrets`, so a plain SHA-256 digest is enough to
store them (no slow hash is needed against guessing, unlike a human password); they are
compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiClient, ApiToken, Scope
from workflows.services.webhooks import webhook_subscriptions_stop


class ClientError(Exception):
    """A client operation that cannot be done (unknown client, unknown scope)."""


@dataclass(frozen=True)
class Credentials:
    """Shown once at creation or rotation, never stored."""

    client_id: str
    client_secret: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def scopes_parse(text: str) -> list[str]:
    """`requests:write,events:read` -> the list; an unknown scope is an error."""
    scopes = sorted({part.strip() for part in text.split(",") if part.strip()})
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown or not scopes:
        raise ClientError(f"unknown or missing scope(s): {', '.join(unknown) or '-'}")
    return scopes


def client_create(
    *, name: str, scopes: list[str], calls_per_minute: int | None = None
) -> Credentials:
    """A new client; the secret is returned here and nowhere else."""
    secret = secrets.token_urlsafe(32)
    client = ApiClient.objects.create(
        client_id="gc_" + secrets.token_hex(12),
        name=name,
        scopes=scopes,
        secret_hash=_digest(secret),
        calls_per_minute=calls_per_minute,
    )
    return Credentials(client_id=client.client_id, client_secret=secret)


def _client(client_id: str) -> ApiClient:
    client = ApiClient.objects.select_for_update().filter(client_id=client_id).first()
    if client is None:
        raise ClientError(f"no such client: {client_id}")
    return client


@transaction.atomic
def client_rotate(*, client_id: str) -> Credentials:
    """A new secret; the old one keeps working for GUICHET_API_ROTATE_GRACE_SECONDS."""
    client = _client(client_id)
    if client.is_revoked:
        raise ClientError(f"client is revoked: {client_id}")
    secret = secrets.token_urlsafe(32)
    client.previous_secret_hash = client.secret_hash
    client.previous_valid_until = timezone.now() + timedelta(
        seconds=settings.GUICHET_API_ROTATE_GRACE_SECONDS
    )
    client.secret_hash = _digest(secret)
    client.save(update_fields=["previous_secret_hash", "previous_valid_until", "secret_hash"])
    return Credentials(client_id=client.client_id, client_secret=secret)


@transaction.atomic
def client_revoke(*, client_id: str) -> None:
    """Refused at once: every secret and every token issued to it stop working now, and its
    webhook subscriptions stop."""
    client = _client(client_id)
    client.revoked_at = client.revoked_at or timezone.now()
    client.secret_hash = ""
    client.previous_secret_hash = ""
    client.previous_valid_until = None
    client.save(
        update_fields=["revoked_at", "secret_hash", "previous_secret_hash", "previous_valid_until"]
    )
    ApiToken.objects.filter(client=client).delete()
    # Its webhooks stop too: a revoked client receives nothing more (queued deliveries included,
    # workflows.services.webhooks.webhook_deliver).
    webhook_subscriptions_stop(client_id=client.client_id)


def client_authenticate(*, client_id: str, client_secret: str) -> ApiClient | None:
    """The client if the id and secret (current, or previous within its grace) are right."""
    client = ApiClient.objects.filter(client_id=client_id, revoked_at=None).first()
    # The same digest and comparisons whether or not the client exists.
    given = _digest(client_secret)
    current = client.secret_hash if client is not None else "0" * 64
    previous = client.previous_secret_hash if client is not None else ""
    ok = hmac.compare_digest(given, current)
    in_grace = (
        client is not None
        and client.previous_valid_until is not None
        and client.previous_valid_until > timezone.now()
    )
    ok_previous = bool(previous) and hmac.compare_digest(given, previous) and in_grace
    if client is None or not (ok or ok_previous):
        return None
    return client


def token_issue(*, client: ApiClient) -> tuple[str, int]:
    """A fresh access token and its lifetime in seconds; only its digest is stored."""
    lifetime = settings.GUICHET_API_TOKEN_TTL_SECONDS
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    ApiToken.objects.create(
        client=client,
        token_hash=_digest(token),
        scopes=client.scopes,
        expires_at=now + timedelta(seconds=lifetime),
    )
    # Expired tokens of this client are forgotten as new ones are issued.
    ApiToken.objects.filter(client=client, expires_at__lt=now).delete()
    return token, lifetime


def token_resolve(token: str) -> ApiToken | None:
    """The live token row (with its client) for a bearer token, or None."""
    row = (
        ApiToken.objects.select_related("client")
        .filter(token_hash=_digest(token), expires_at__gt=timezone.now())
        .first()
    )
    if row is None or row.client.is_revoked:
        return None
    return row
