"""Bearer-token authentication, per-view scopes and per-client rate limits (DRF hooks)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from api.clients import token_resolve
from api.models import ApiClient, ApiToken
from members.throttling import rate_exceeded

if TYPE_CHECKING:
    from rest_framework.views import APIView

RATE_WINDOW = 60


def api_client_of(request: Request) -> ApiClient | None:
    """The client whose token authenticated this call, if any."""
    token = request.auth
    return token.client if isinstance(token, ApiToken) else None


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` from POST /api/v1/token; the client is `request.user`."""

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        row = token_resolve(token.strip()) if token.strip() else None
        if row is None:
            raise exceptions.AuthenticationFailed("The access token is invalid or expired.")
        return row.client, row

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="guichet"'


class HasScope(BasePermission):
    """The view's `required_scope` must be among the token's scopes (no scope: open view)."""

    message = "The access token does not carry the scope this operation needs."

    def has_permission(self, request: Request, view: APIView) -> bool:
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return True
        if not isinstance(request.auth, ApiToken):
            raise exceptions.NotAuthenticated("An access token is required.")
        return scope in request.auth.scopes


class ClientRateThrottle(BaseThrottle):
    """Calls per client per minute (its own figure, or GUICHET_API_CALLS_PER_MINUTE)."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        client = api_client_of(request)
        if client is None:
            return True  # unauthenticated calls are refused or limited elsewhere
        limit = client.calls_per_minute or settings.GUICHET_API_CALLS_PER_MINUTE
        return not rate_exceeded(
            scope="api-client", value=client.client_id, limit=limit, window=RATE_WINDOW
        )

    def wait(self) -> float:
        return float(RATE_WINDOW - int(time.time()) % RATE_WINDOW)
