"""Desk authentication outcomes go to the `guichet.auth` log (members are logged in views)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

auth_log = logging.getLogger("guichet.auth")


def _is_desk(request: HttpRequest | None) -> bool:
    return request is not None and request.path.startswith("/desk/")


def _ip(request: HttpRequest | None) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


@receiver(user_logged_in, dispatch_uid="guichet-desk-login-ok")
def desk_login_succeeded(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """One line per staff login: account id and address, never the password."""
    if _is_desk(request):
        auth_log.info("desk login ok account=%s ip=%s", user.pk, _ip(request))


@receiver(user_login_failed, dispatch_uid="guichet-desk-login-failed")
def desk_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """One line per refused staff login; the typed username is encoded by the log filter."""
    if _is_desk(request):
        auth_log.info(
            "desk login failed username=%r ip=%s", credentials.get("username", ""), _ip(request)
        )


@receiver(user_logged_out, dispatch_uid="guichet-logout")
def logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Logouts, for the session timeline."""
    if user is not None:
        auth_log.info("logout account=%s ip=%s", user.pk, _ip(request))
