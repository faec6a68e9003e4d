"""Cross-cutting request rules: security headers, session lifetime, the temporary-password jail,
the staff second factor."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from core.logging import REQUEST_ID

security_log = logging.getLogger("guichet.security")

# What an X-Request-ID from our proxy may look like; anything else is replaced (no log forging).
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]{8,128}")


class RequestIdMiddleware:
    """One id per request: our trusted proxy's X-Request-ID, else a fresh one; echoed back.

    Trusted only when GUICHET_TRUSTED_PROXY_COUNT > 0 (a proxy sets or overwrites the header);
    with no proxy a client could choose the id, so it is always generated.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.META.get("HTTP_X_REQUEST_ID", "")
        if settings.GUICHET_TRUSTED_PROXY_COUNT > 0 and REQUEST_ID_SHAPE.fullmatch(offered):
            request_id = offered
        else:
            request_id = uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response.headers["X-Request-ID"] = request_id
        return response


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """CSP on every response; no-store wherever a session may show personal data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403:
            # Every refusal (role, CSRF, jail) logs who, what, where (docs/security.md §29).
            user = getattr(request, "user", None)
            security_log.warning(
                "access refused status=403 method=%s path=%s user=%s ip=%s",
                request.method,
                request.path,
                user.pk if user is not None and user.is_authenticated else "-",
                request.META.get("REMOTE_ADDR", ""),
            )
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        if not request.path.startswith(
            settings.STATIC_URL
            if settings.STATIC_URL.startswith("/")
            else "/" + settings.STATIC_URL
        ):
            # Pages may carry personal data or CSRF tokens: never store them in shared caches.
            response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Server", None)
        return response


class SessionLifetimeMiddleware:
    """End a session 12 h after login whatever the activity (the idle limit is the cookie age)."""

    KEY = "_guichet_authenticated_at"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(self.KEY)
            now = time.time()
            if started is None:
                request.session[self.KEY] = now
            elif now - started > settings.GUICHET_SESSION_ABSOLUTE_SECONDS:
                logout(request)
        return self.get_response(request)


class TemporaryPasswordMiddleware:
    """A member on a temporary password may only change it or log out (docs/security.md §13)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_staff
            and getattr(user, "must_change_password", False)
        ):
            allowed = {reverse("password_change"), reverse("logout")}
            if request.path not in allowed and not request.path.startswith("/static/"):
                if request.method not in ("GET", "HEAD"):
                    return HttpResponse(status=403)
                return HttpResponseRedirect(reverse("password_change"))
        return self.get_response(request)


class SecondFactorMiddleware:
    """Staff reach no desk, supervisor or admin page before their second factor (§40).

    After the password the session is logged in but not verified (django-otp's OTPMiddleware
    sets `user.is_verified()`): GETs go to the second-factor step, everything else is refused.
    """

    PROTECTED = ("/desk/", "/admin/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.is_staff
            and request.path.startswith(self.PROTECTED)
            and not user.is_verified()
            and request.path not in self._open_paths()
        ):
            if request.method not in ("GET", "HEAD"):
                return HttpResponse(status=403)
            step = reverse("desk_second_factor")
            return HttpResponseRedirect(f"{step}?{urlencode({'next': request.path})}")
        return self.get_response(request)

    @staticmethod
    def _open_paths() -> set[str]:
        return {reverse("desk_login"), reverse("desk_logout"), reverse("desk_second_factor")}
