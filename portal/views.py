"""Member-facing request pages: home, registration, request status, help, health, dev outbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from members.throttling import (
    EmailBudget,
    client_ip,
    status_page_exceeded,
    submission_identifier_exceeded,
    submission_ip_exceeded,
)
from portal.forms import RecoveryForm, RegistrationForm, SupportForm
from tickets.models import REFERENCE_REGEX, Ticket, TicketKind
from workflows.models import RequestAlias
from workflows.services.intake import RequestData, request_intake
from workflows.services.submissions import form_token_new, submission_once


def request_id_of(request: HttpRequest) -> str:
    """The id a proxy gave this request, for correlating history and logs."""
    return request.headers.get("X-Request-Id", "")[:64]


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


@require_GET
def help_page(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/help.html")


def _throttled(request: HttpRequest) -> HttpResponse:
    """One answer for every limit hit, known identifier or not (docs/security.md §3)."""
    response = render(request, "portal/throttled.html", status=429)
    response["Retry-After"] = "3600"
    return response


def _public_request(
    request: HttpRequest, form: Any, template: str, data_of: Callable[[dict[str, Any]], RequestData]
) -> HttpResponse:
    """The shared path of every public request form: limits, validation, intake, redirect.

    Per-IP and per-identifier limits answer 429 before any registry lookup, so they trip after
    the same count whatever the registry holds; a spent per-address e-mail budget changes
    nothing visible: the request is stored and the page is the same, only the e-mail is skipped.
    """
    if request.method == "POST":
        if submission_ip_exceeded(request):
            return _throttled(request)
        if form.is_valid():
            data = replace(data_of(form.cleaned_data), client_ip=client_ip(request))
            if submission_identifier_exceeded(data.member_number or data.nir):
                return _throttled(request)
            budget = EmailBudget(data.email)

            def submit() -> str:
                # Taken only by the submission that really stores the request (not a replay).
                return request_intake(
                    data=data, request_id=request_id_of(request), acknowledge=budget.take()
                ).reference

            try:
                reference, _replayed = submission_once(
                    token=form.cleaned_data.get("form_token", ""), submit=submit
                )
            except BaseException:
                budget.refund()  # rolled back: nothing was sent, its replay will pay
                raise
            return redirect("request_status", reference=reference)
    return render(request, template, {"form": form})


def _fresh_form() -> dict[str, Any]:
    """Initial data of an unbound public form: its one-time token."""
    return {"form_token": form_token_new()}


def _language() -> str:
    return get_language() or settings.LANGUAGE_CODE


def _request_data(data: dict[str, Any], **specific: Any) -> RequestData:
    """A public form's request, in the language of the page it came from."""
    return RequestData.from_identity(data, language=_language(), **specific)


@sensitive_post_parameters("secret_answer", "nir")
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    return _public_request(
        request,
        RegistrationForm(request.POST or None, initial=_fresh_form()),
        "portal/register.html",
        lambda data: _request_data(
            data,
            kind=TicketKind.REGISTRATION,
            secret_question=data["secret_question"],
            secret_answer=data["secret_answer"],
        ),
    )


@sensitive_post_parameters("secret_answer", "nir")
@require_http_methods(["GET", "POST"])
def recover(request: HttpRequest) -> HttpResponse:
    """Forgotten codes: the same page and e-mail whatever the registry and the accounts say."""
    return _public_request(
        request,
        RecoveryForm(request.POST or None, initial=_fresh_form()),
        "portal/recover.html",
        lambda data: _request_data(
            data,
            kind=TicketKind.RECOVERY,
            requested_email=data["new_email"],
            secret_answer=data["secret_answer"],
        ),
    )


@sensitive_post_parameters("nir")
@require_http_methods(["GET", "POST"])
def support(request: HttpRequest) -> HttpResponse:
    """Write to support: codes never received, cannot log in, closure, e-mail changed."""
    return _public_request(
        request,
        SupportForm(request.POST or None, initial=_fresh_form()),
        "portal/support.html",
        lambda data: _request_data(
            data,
            kind=data["kind"],
            requested_email=data["new_email"],
            message=data["message"],
            topic=data["topic"],
        ),
    )


@never_cache
@require_GET
def request_status(request: HttpRequest, reference: str) -> HttpResponse:
    """Kind, neutral state and dates only: the reference is all a visitor needs to see this."""
    if status_page_exceeded(request):
        return _throttled(request)
    if not re.fullmatch(REFERENCE_REGEX, reference):
        raise Http404
    fields = ("reference", "kind", "state", "created_at", "decided_at")
    ticket = Ticket.objects.only(*fields).filter(reference=reference).first()
    received_at = ticket.created_at if ticket is not None else None
    if ticket is None:
        # A repeat request's own reference: its own date, the open ticket's state.
        alias = (
            RequestAlias.objects.select_related("ticket")
            .only("created_at", *(f"ticket__{f}" for f in fields))
            .filter(reference=reference)
            .first()
        )
        if alias is None:
            raise Http404
        ticket, received_at = alias.ticket, alias.created_at
    return render(
        request,
        "portal/request_status.html",
        {"ticket": ticket, "reference": reference, "received_at": received_at},
    )


@require_GET
def dev_outbox(request: HttpRequest) -> HttpResponse:
    """While DEBUG is on, the e-mails the file backend wrote, newest first (make run's mailbox)."""
    if not settings.DEBUG:
        raise Http404
    mail_dir = Path(settings.EMAIL_FILE_PATH)
    files = sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)[:50]
    messages = [
        {"name": f.name, "text": f.read_text(encoding="utf-8", errors="replace")} for f in files
    ]
    return render(request, "portal/dev_outbox.html", {"messages_": messages})
