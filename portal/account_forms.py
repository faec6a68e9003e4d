"""The member's own account forms: password change, e-mail change (validate only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.models import Account
from members.services.accounts import emails_differ
from members.throttling import client_ip, login_blocked, login_failure_record


class MemberPasswordChangeForm(PasswordChangeForm):
    """Old password, then a new one that follows the policy and differs from the old."""

    def clean_new_password1(self) -> str:
        new: str = self.cleaned_data["new_password1"]
        old = self.cleaned_data.get("old_password")
        if old is not None and new == old:
            raise ValidationError(
                _("Your new password must differ from the current one."), code="password_unchanged"
            )
        password_validation.validate_password(new, self.user)
        return new


class EmailChangeForm(forms.Form):
    """Re-enter the password, then give the new address (a link is sent there to confirm it)."""

    password = forms.CharField(
        label=_("Your current password"), strip=False, max_length=256, widget=forms.PasswordInput
    )
    new_email = forms.EmailField(label=_("New e-mail address"), max_length=254)

    def __init__(self, account: Account, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.account = account
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_new_email(self) -> str:
        value: str = self.cleaned_data["new_email"].strip()
        if any(c in value for c in "\r\n"):
            raise ValidationError(_("Enter a valid e-mail address."), code="invalid")
        if not emails_differ(value, self.account.email or ""):
            raise ValidationError(
                _("This is already the e-mail address of your account."), code="unchanged"
            )
        return value

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        ip = client_ip(self.request)
        # Wrong passwords here count like failed logins: a stolen session cannot guess on.
        blocked = login_blocked(portal="member", username=self.account.username, ip=ip)
        if not self.account.check_password(password) or blocked:
            login_failure_record(portal="member", username=self.account.username, ip=ip)
            raise ValidationError(_("Incorrect password."), code="invalid_password")
        return password
