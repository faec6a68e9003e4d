"""Login forms of both portals, members' and desk (validate only; throttled like every login)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.backends import TemporaryPasswordExpired
from members.models import Account
from members.throttling import (
    client_ip,
    login_blocked,
    login_failure_record,
    login_success_record,
)

GENERIC_LOGIN_ERROR = _(
    "Incorrect member ID or password. If you have lost your codes, use “Forgotten codes”."
)
# Shown only to whoever typed the right temporary password (see TemporaryPasswordExpired).
EXPIRED_TEMPORARY_PASSWORD_ERROR = _(
    "This temporary password has expired: it worked for 24 hours only. "
    "Use “Forgotten codes” to receive new codes."
)


class PortalLoginForm(forms.Form):
    """Log in with member ID + password; every failure gets the same message."""

    portal = "member"
    username = forms.CharField(label=_("Member ID"), max_length=150)
    password = forms.CharField(
        label=_("Password"), strip=False, max_length=256, widget=forms.PasswordInput
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.account: Account | None = None
        self.expired_account: Account | None = None
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        username = cleaned.get("username", "").strip()
        password = cleaned.get("password")
        if self.errors or not username or password is None:
            raise ValidationError(GENERIC_LOGIN_ERROR, code="invalid_login")
        username = username.upper() if self.portal == "member" else username
        ip = client_ip(self.request)
        # Locked, wrong and unknown look alike: the lock is read first, but the password is
        # checked anyway (one hash on every path) and its result thrown away while locked.
        blocked = login_blocked(portal=self.portal, username=username, ip=ip)
        try:
            account = authenticate(
                self.request, username=username, password=password, portal=self.portal
            )
        except TemporaryPasswordExpired as expired:
            if blocked:
                login_failure_record(portal=self.portal, username=username, ip=ip)
                raise ValidationError(GENERIC_LOGIN_ERROR, code="invalid_login") from None
            self.expired_account = expired.account
            raise ValidationError(
                EXPIRED_TEMPORARY_PASSWORD_ERROR, code="temporary_password_expired"
            ) from None
        if blocked or account is None:
            login_failure_record(portal=self.portal, username=username, ip=ip)
            raise ValidationError(GENERIC_LOGIN_ERROR, code="invalid_login")
        login_success_record(portal=self.portal, username=username)
        self.account = account
        return cleaned


class DeskLoginForm(PortalLoginForm):
    portal = "desk"
    username = forms.CharField(label=_("Username"), max_length=150)


class SecondFactorForm(forms.Form):
    """The second-factor step: one code from the authenticator, or one backup code."""

    otp_token = forms.CharField(
        label=_("Code"),
        max_length=16,
        strip=True,
        help_text=_("The 6-digit code your authenticator app shows now, or one backup code."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )
