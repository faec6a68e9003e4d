"""The member's own pages: login, logout, account, password change."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from members.forms import MemberPasswordChangeForm, PortalLoginForm
from members.models import Account
from workflows.services.accounts import account_password_change

auth_log = logging.getLogger("guichet.auth")


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _get_member_account(request: HttpRequest) -> Account:
    """The logged-in member's own account; staff have no member pages."""
    account = request.user
    if not isinstance(account, Account) or not account.is_member:
        raise PermissionDenied
    return account


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = PortalLoginForm(request, request.POST or None)
    if request.method == "POST":
        if form.is_valid() and form.account is not None:
            login(request, form.account)  # rotates the session key (ASVS 3.2.1)
            auth_log.info("member login ok account=%s ip=%s", form.account.pk, _client_ip(request))
            return redirect("password_change" if form.account.must_change_password else "account")
        auth_log.info("member login failed ip=%s", _client_ip(request))
    return render(request, "portal/login.html", {"form": form})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the session server-side (ASVS 3.3.1)
    return redirect("home")


@login_required
def account_view(request: HttpRequest) -> HttpResponse:
    account = _get_member_account(request)
    return render(request, "portal/account.html", {"account": account})


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@login_required
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    account = _get_member_account(request)
    form = MemberPasswordChangeForm(account, request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = account_password_change(
            account=account,
            new_password=form.cleaned_data["new_password1"],
            language=get_language() or settings.LANGUAGE_CODE,
        )
        # Keep this session; every other session of the account ends (ASVS 3.3.3).
        update_session_auth_hash(request, account)
        messages.success(request, _("Your password has been changed."))
        return redirect("account")
    return render(
        request,
        "portal/password_change.html",
        {"form": form, "forced": account.must_change_password},
    )
