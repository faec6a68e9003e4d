"""Member-facing request pages: home, registration, request status, help, health, dev outbox."""

from __future__ import annotations

import re
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from tickets.models import REFERENCE_REGEX, Ticket, TicketKind
from workflows.forms import RegistrationForm
from workflows.services.intake import RequestData, request_submit
from workflows.tasks import HEARTBEAT_KEY


def request_id_of(request: HttpRequest) -> str:
    """The id a proxy gave this request, for correlating history and logs."""
    return request.headers.get("X-Request-Id", "")[:64]


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


@require_GET
def help_page(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/help.html")


@sensitive_post_parameters("secret_answer", "nir")
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ticket = request_submit(
            data=RequestData(
                kind=TicketKind.REGISTRATION,
                member_number=data["member_number"],
                nir=data["nir"],
                last_name=data["last_name"],
                first_name=data["first_name"],
                birth_date=data["birth_date"],
                email=data["email"],
                secret_question=data["secret_question"],
                secret_answer=data["secret_answer"],
                language=get_language() or settings.LANGUAGE_CODE,
            ),
            request_id=request_id_of(request),
        )
        return redirect("request_status", reference=ticket.reference)
    return render(request, "portal/register.html", {"form": form})


@never_cache
@require_GET
def request_status(request: HttpRequest, reference: str) -> HttpResponse:
    """Kind, neutral state and dates only: the reference is all a visitor needs to see this."""
    if not re.fullmatch(REFERENCE_REGEX, reference):
        raise Http404
    ticket = get_object_or_404(
        Ticket.objects.only("reference", "kind", "state", "created_at", "decided_at"),
        reference=reference,
    )
    return render(request, "portal/request_status.html", {"ticket": ticket})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker heartbeat; 200 only when everything configured answers."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "down"
    if settings.REDIS_URL:
        checks["broker"] = _broker_status()
        beat = _cache_get(HEARTBEAT_KEY)
        fresh = beat is not None and time.time() - float(beat) < (
            settings.GUICHET_WORKER_HEARTBEAT_MAX_AGE
        )
        checks["worker"] = "ok" if fresh else "down"
    else:
        checks["broker"] = "in-process"
        checks["worker"] = "in-process"
    healthy = all(v in ("ok", "in-process") for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


def _broker_status() -> str:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        return "ok" if client.ping() else "down"
    except Exception:
        return "down"


def _cache_get(key: str) -> object:
    try:
        return cache.get(key)
    except Exception:
        return None


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
