"""Member login and password forms (validate only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.models import Account

GENERIC_LOGIN_ERROR = _(
    "Incorrect member ID or password. If you have lost your codes, use “Forgotten codes”."
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
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        username = cleaned.get("username", "").strip()
        password = cleaned.get("password")
        if self.errors or not username or password is None:
            raise ValidationError(GENERIC_LOGIN_ERROR, code="invalid_login")
        account = authenticate(
            self.request,
            username=username.upper() if self.portal == "member" else username,
            password=password,
            portal=self.portal,
        )
        if account is None:
            raise ValidationError(GENERIC_LOGIN_ERROR, code="invalid_login")
        self.account = account
        return cleaned


class DeskLoginForm(PortalLoginForm):
    portal = "desk"
    username = forms.CharField(label=_("Username"), max_length=150)


class MemberPasswordChangeForm(PasswordChangeForm):
    """Old password, then a new one that follows the policy and differs from the old."""

    def clean_new_password1(self) -> str:
        new = self.cleaned_data["new_password1"]
        old = self.cleaned_data.get("old_password")
        if old is not None and new == old:
            raise ValidationError(
                _("Your new password must differ from the current one."), code="password_unchanged"
            )
        password_validation.validate_password(new, self.user)
        return new
