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
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from members.forms import PortalLoginForm
from members.masking import mask_email
from members.models import AccessJournalEntry, Account, EmailChangeRequest
from members.throttling import client_ip, email_budget_take
from portal.account_forms import EmailChangeForm, MemberPasswordChangeForm
from tickets.models import Ticket
from workflows.models import OutboxMessage, OutboxStatus
from workflows.services.accounts import (
    account_email_change_cancel,
    account_email_change_confirm,
    account_email_change_request,
    account_password_change,
    account_temporary_password_expired,
    email_change_pending,
    email_change_waiting,
)
from workflows.services.not_me import NotMeRefused, not_me_confirm, not_me_link_check

auth_log = logging.getLogger("guichet.auth")


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
            auth_log.info("member login ok account=%s ip=%s", form.account.pk, client_ip(request))
            return redirect("password_change" if form.account.must_change_password else "account")
        if form.expired_account is not None:
            account_temporary_password_expired(account=form.expired_account)
        auth_log.info("member login failed ip=%s", client_ip(request))
    return render(request, "portal/login.html", {"form": form})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the session server-side (ASVS 3.3.1)
    return redirect("home")


@login_required
def account_view(request: HttpRequest) -> HttpResponse:
    account = _get_member_account(request)
    waiting = email_change_waiting(account=account)
    return render(
        request,
        "portal/account.html",
        {
            "account": account,
            "waiting": waiting,
            "waiting_email": mask_email(waiting.new_email) if waiting else "",
        },
    )


@login_required
@require_POST
def email_change_cancel_view(request: HttpRequest) -> HttpResponse:
    """The member stops the change of address waiting on their account (a POST, CSRF-checked)."""
    account = _get_member_account(request)
    if account_email_change_cancel(account=account):
        messages.success(
            request, _("The change of your e-mail address is cancelled; your address stays.")
        )
    return redirect("account")


@login_required
@require_http_methods(["GET"])
def activity_view(request: HttpRequest) -> HttpResponse:
    """The member's file, as they can see it: requests, decisions (by role), e-mails sent and
    the days staff looked at it (docs/product.md, "Activity page")."""
    account = _get_member_account(request)
    member_id = account.member_id
    if member_id is None:  # is_member says otherwise; keeps the type narrow
        raise PermissionDenied
    tickets = list(
        Ticket.objects.filter(member_id=member_id)
        .only("reference", "kind", "state", "created_at", "decided_at", "decided_by_id")
        .order_by("-created_at")[:100]
    )
    email_changes = list(
        EmailChangeRequest.objects.filter(account=account, confirmed_at__isnull=False)
        .only("new_email", "confirmed_at", "applies_at", "used_at", "outcome", "ticket_reference")
        .order_by("-confirmed_at", "-pk")[:100]
    )
    emails = list(
        OutboxMessage.objects.filter(ticket__member_id=member_id, status=OutboxStatus.SENT)
        .only("template", "sent_at", "created_at")
        .order_by("-created_at")[:100]
    )
    looks = list(
        AccessJournalEntry.objects.filter(member_id=member_id).dates(
            "created_at", "day", order="DESC"
        )[:100]
    )
    return render(
        request,
        "portal/activity.html",
        {
            "tickets": tickets,
            "emails": emails,
            "looks": looks,
            "email_changes": [(change, mask_email(change.new_email)) for change in email_changes],
        },
    )


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


@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def email_change_view(request: HttpRequest) -> HttpResponse:
    """Re-enter the password and give the new address; it applies once its link is followed."""
    account = _get_member_account(request)
    form = EmailChangeForm(account, request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        new_email = form.cleaned_data["new_email"]
        account_email_change_request(
            account=account,
            new_email=new_email,
            language=get_language() or settings.LANGUAGE_CODE,
            send=email_budget_take(new_email),
        )
        delay_hours = settings.GUICHET_EMAIL_CHANGE_DELAY_HOURS
        if delay_hours:
            notice = ngettext(
                "We have sent a link to %(email)s. Follow it within an hour to confirm the new "
                "address. The change then waits %(hours)d hour before it applies: your current "
                "address stays in use, is told at once and can stop the change.",
                "We have sent a link to %(email)s. Follow it within an hour to confirm the new "
                "address. The change then waits %(hours)d hours before it applies: your current "
                "address stays in use, is told at once and can stop the change.",
                delay_hours,
            ) % {"email": new_email, "hours": delay_hours}
        else:
            notice = _(
                "We have sent a link to %(email)s. Follow it within an hour to confirm the new "
                "address; until then your current address stays in use."
            ) % {"email": new_email}
        messages.success(request, notice)
        return redirect("account")
    return render(
        request,
        "portal/email_change.html",
        {
            "form": form,
            "account": account,
            "delay_hours": settings.GUICHET_EMAIL_CHANGE_DELAY_HOURS,
        },
    )


@require_http_methods(["GET", "POST"])
def email_change_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the e-mail: GET shows a button (no change on GET), POST applies it once."""
    if request.method == "POST":
        change = account_email_change_confirm(
            token=token, language=get_language() or settings.LANGUAGE_CODE
        )
        if change is not None:
            if change.is_pending and change.applies_at is not None:
                messages.success(
                    request,
                    _(
                        "Your new e-mail address is confirmed. For your safety it takes effect "
                        "on %(date)s; until then your current address stays in use and is told "
                        "of the change."
                    )
                    % {"date": date_format(localtime(change.applies_at), "DATETIME_FORMAT")},
                )
            else:
                messages.success(request, _("Your new e-mail address is recorded."))
            return redirect("account" if request.user.is_authenticated else "login")
        valid = False
    else:
        valid = email_change_pending(token=token) is not None
    response = render(
        request, "portal/email_change_confirm.html", {"valid": valid}, status=200 if valid else 404
    )
    return response


@require_http_methods(["GET", "POST"])
def not_me_view(request: HttpRequest, token: str) -> HttpResponse:
    """ "This was not me": GET explains and asks for a POST (no change on GET, so a mail scanner
    following links freezes nothing); the POST freezes the account once. No login needed."""
    refused = ""
    frozen = None
    try:
        if request.method == "POST":
            frozen = not_me_confirm(
                token=token, request_id=request.META.get("HTTP_X_REQUEST_ID", "")
            )
        else:
            not_me_link_check(token=token)
    except NotMeRefused as exc:
        refused = exc.code
    if frozen is not None:
        auth_log.info("account frozen by its member account=%s", frozen.account.pk)
        if request.user.is_authenticated:
            logout(request)
    status = 200 if not refused else (410 if refused in ("used", "expired") else 404)
    return render(
        request,
        "portal/not_me.html",
        {"refused": refused, "frozen": frozen},
        status=status,
    )
