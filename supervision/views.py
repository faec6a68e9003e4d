"""Supervisors' views: figures, the filtered queue with reassignment, exports and the audit log."""

from __future__ import annotations

import logging
from typing import Any, cast

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.logging import current_request_id
from members.models import AccessJournalEntry, Account
from members.throttling import client_ip
from supervision import exports
from supervision import render as tables_html
from supervision.charts import flow_chart
from supervision.filters import AuditFilter, filters_slug
from supervision.forms import ReassignForm
from supervision.selectors import (
    second_factor_events,
    staff_second_factor_rows,
    supervision_figures,
)
from supervision.services import (
    BULK_LIMIT,
    BulkOutcome,
    claims_release_stale,
    tickets_reassign,
)
from tickets.access import step_up_required, supervisor_required
from tickets.filters import TicketFilter
from tickets.models import OPEN_STATES, Ticket, TicketEvent
from workflows.services.second_factor import staff_second_factor_reset

security_log = logging.getLogger("guichet.security")
PAGE_SIZE = 50


def _queue(request: HttpRequest) -> tuple[TicketFilter, Any]:
    """The desk's filtered queue; an invalid filter selects nothing (never more than asked)."""
    filterset = TicketFilter(request.GET, queryset=Ticket.objects.all(), request=request)
    queryset = filterset.qs if filterset.is_valid() else Ticket.objects.none()
    return filterset, queryset


def _audit(request: HttpRequest) -> tuple[AuditFilter, Any]:
    filterset = AuditFilter(request.GET, queryset=TicketEvent.objects.all())
    queryset = filterset.qs if filterset.is_valid() else TicketEvent.objects.none()
    return filterset, queryset


@supervisor_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    figures = supervision_figures(now=timezone.now())
    figures["chart"] = flow_chart(figures["flow"])
    figures["flow_rows"] = tables_html.flow_rows(figures["flow"])
    figures["promise_rows"] = tables_html.promise_rows(figures["promise"].days)
    figures["people_rows"] = tables_html.people_rows(figures["people"].rows)
    figures["troubled_rows"] = tables_html.troubled_rows(figures["promise"].troubled)
    return render(request, "supervision/dashboard.html", figures)


@supervisor_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    filterset, queryset = _queue(request)
    tickets = list(
        queryset.select_related("assignee")
        .only("reference", "kind", "state", "created_at", "claimed_at", "assignee__username")
        .order_by("created_at", "id")[: PAGE_SIZE + 1]
    )
    return render(
        request,
        "supervision/queue.html",
        {
            "filter": filterset,
            "tickets": tickets[:PAGE_SIZE],
            "more": len(tickets) > PAGE_SIZE,
            "form": ReassignForm(),
            "query": request.GET.urlencode(),
            "bulk_limit": BULK_LIMIT,
        },
    )


def _report(request: HttpRequest, outcome: BulkOutcome, done_message: str) -> None:
    if outcome.done:
        messages.success(request, done_message % {"n": len(outcome.done)})
    if outcome.refused:
        messages.error(
            request,
            _("Not done (decided meanwhile or not allowed): %(refs)s")
            % {"refs": ", ".join(sorted(outcome.refused))},
        )


@supervisor_required
@require_POST
@step_up_required
def reassign(request: HttpRequest) -> HttpResponse:
    """Reassign the ticked tickets, or every open ticket of the filtered queue (bounded)."""
    form = ReassignForm(request.POST)
    back = f"{reverse('supervision_queue')}?{request.GET.urlencode()}"
    if not form.is_valid():
        for error in form.errors.get("__all__", []) or [_("Choose an agent and tickets.")]:
            # ErrorList yields messages: its __getitem__ unwraps each ValidationError.
            messages.error(request, cast(str, error))
        return redirect(back)
    references = form.cleaned_data["reference"]
    if form.cleaned_data["scope"] == ReassignForm.FILTERED:
        _filterset, queryset = _queue(request)
        references = list(
            queryset.filter(state__in=OPEN_STATES)
            .order_by("created_at", "id")
            .values_list("reference", flat=True)[:BULK_LIMIT]
        )
    actor: Account = request.user  # type: ignore[assignment]
    outcome = tickets_reassign(
        references=references,
        actor=actor,
        assignee=form.cleaned_data["assignee"],
        request_id=current_request_id(),
    )
    _report(request, outcome, _("%(n)s ticket(s) reassigned."))
    return redirect(back)


@supervisor_required
@require_POST
def release_stale(request: HttpRequest) -> HttpResponse:
    actor: Account = request.user  # type: ignore[assignment]
    outcome = claims_release_stale(actor=actor, request_id=current_request_id())
    _report(request, outcome, _("%(n)s stale claim(s) released."))
    return redirect("supervision")


@supervisor_required
@require_GET
def export_queue(request: HttpRequest) -> StreamingHttpResponse:
    filterset, queryset = _queue(request)
    return exports.queue_export(queryset, slug=filters_slug(filterset))


@supervisor_required
@require_GET
def export_audit(request: HttpRequest) -> StreamingHttpResponse:
    filterset, queryset = _audit(request)
    return exports.audit_export(queryset, slug=filters_slug(filterset))


@supervisor_required
@require_GET
def export_access_journal(request: HttpRequest) -> StreamingHttpResponse:
    """Every look at a member's file still in the journal, streamed in keyset chunks."""
    return exports.access_journal_export(AccessJournalEntry.objects.all())


@supervisor_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    """Latest events first; `before` (an event id) pages backwards without counting the table."""
    filterset, queryset = _audit(request)
    before = request.GET.get("before", "")
    if before.isdigit():
        queryset = queryset.filter(id__lt=int(before))
    events = list(
        queryset.select_related("ticket", "actor")
        .only(
            "created_at", "kind", "from_state", "to_state", "actor_kind", "reason",
            "ticket__reference", "ticket__kind", "actor__username",
        )
        .order_by("-id")[: PAGE_SIZE + 1]
    )  # fmt: skip
    params = request.GET.copy()
    params.pop("before", None)
    return render(
        request,
        "supervision/audit.html",
        {
            "filter": filterset,
            "events": events[:PAGE_SIZE],
            "next_before": events[PAGE_SIZE - 1].pk if len(events) > PAGE_SIZE else None,
            "query": params.urlencode(),
        },
    )


@supervisor_required
@require_GET
def staff(request: HttpRequest) -> HttpResponse:
    """The staff accounts and whether each has an authenticator; reset one from here."""
    return render(
        request,
        "supervision/staff.html",
        {"rows": staff_second_factor_rows(), "events": second_factor_events()},
    )


@supervisor_required
@require_POST
@step_up_required
def second_factor_reset(request: HttpRequest, account_id: int) -> HttpResponse:
    """Remove a colleague's authenticator (lost phone): recorded, and the colleague is told."""
    actor: Account = request.user  # type: ignore[assignment]
    try:
        account = Account.objects.get(pk=account_id, is_staff=True)
    except Account.DoesNotExist:
        raise Http404 from None
    if account.pk == actor.pk:
        messages.error(request, _("Ask another supervisor to reset your own authenticator."))
        return redirect("supervision_staff")
    staff_second_factor_reset(
        account=account,
        actor=actor,
        ip=client_ip(request),
        language=get_language() or "fr",
    )
    messages.success(
        request,
        _("The authenticator of %(name)s is reset: they will set up a new one at their next login.")
        % {"name": account.username},
    )
    return redirect("supervision_staff")
