"""The agents' desk: login, queue, one ticket, and the actions on it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import LazyPaginator, RequestConfig

from members.eligibility import eligibility_from_coverages
from members.forms import DeskLoginForm
from members.models import Account
from tickets.forms import CommentForm, NoteForm, RejectForm
from tickets.models import Ticket
from tickets.selectors import queue_tickets, ticket_for_desk, ticket_history
from tickets.services import (
    TicketActionError,
    ticket_claim,
    ticket_note,
    ticket_record_refusal,
    ticket_release,
)
from tickets.tables import TicketTable
from workflows.identity import diff_segments
from workflows.services.decisions import ticket_confirm, ticket_flag_mismatch, ticket_reject

security_log = logging.getLogger("guichet.security")

ACTION_ERRORS = {
    "already_decided": gettext_lazy("This ticket has already been decided."),
    "claimed_by_other": gettext_lazy("Another agent has claimed this ticket."),
    "not_allowed_in_state": gettext_lazy(
        "This action is not possible in the ticket's current state."
    ),
    "forbidden": gettext_lazy("You are not allowed to do this."),
    "no_registry_member": gettext_lazy(
        "No registry member is matched: this request cannot be confirmed."
    ),
    "not_eligible": gettext_lazy("The member is not eligible for an account."),
    "already_registered": gettext_lazy("The member already has an account."),
    "no_active_account": gettext_lazy("The member has no active account."),
    "invalid_reason": gettext_lazy("Choose a reason from the list."),
    "no_new_email": gettext_lazy("The request carries no new e-mail address."),
}


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Desk pages: anonymous users go to the desk login, members get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect(f"{reverse('desk_login')}?next={request.path}")
        if not (user.is_active and user.is_staff):
            security_log.warning("desk access refused user=%s path=%s", user.pk, request.path)
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _get_ticket_for_agent(reference: str) -> Ticket:
    try:
        return ticket_for_desk(reference=reference)
    except Ticket.DoesNotExist:
        raise Http404 from None


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def desk_login(request: HttpRequest) -> HttpResponse:
    form = DeskLoginForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.account is not None:
        login(request, form.account)
        next_url = request.GET.get("next", "")
        if not next_url.startswith("/desk/") or next_url.startswith("//"):
            next_url = reverse("desk_queue")
        return redirect(next_url)
    return render(request, "desk/login.html", {"form": form})


@require_POST
def desk_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("desk_login")


@staff_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    table = TicketTable(queue_tickets())
    RequestConfig(request, paginate={"per_page": 50, "paginator_class": LazyPaginator}).configure(
        table
    )
    return render(request, "desk/queue.html", {"table": table})


@staff_required
@require_GET
def ticket_detail(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _get_ticket_for_agent(reference)
    member = ticket.member
    comparison = []
    eligibility = None
    if member is not None:
        for field, label in (
            ("last_name", _("Last name")),
            ("first_name", _("First name")),
        ):
            submitted = getattr(ticket, f"submitted_{field}")
            registry = getattr(member, field)
            comparison.append(
                {
                    "label": label,
                    "submitted": diff_segments(submitted, registry),
                    "registry": diff_segments(registry, submitted),
                    "equal": _field_equal(ticket, field),
                    "closeness": _field_closeness(ticket, field),
                }
            )
        eligibility = eligibility_from_coverages(
            member.coverages.all(), on=ticket.created_at.date()
        )
    transitions = {t.name for t in ticket.get_available_user_state_transitions(request.user)}
    return render(
        request,
        "desk/ticket.html",
        {
            "ticket": ticket,
            "member": member,
            "comparison": comparison,
            "eligibility": eligibility,
            "history": ticket_history(ticket=ticket),
            "transitions": transitions,
            "reject_form": RejectForm(),
            "comment_form": CommentForm(),
            "note_form": NoteForm(),
        },
    )


def _comparison_field(ticket: Ticket, field: str) -> dict[str, Any]:
    for entry in ticket.match_details.get("comparison", {}).get("fields", []):
        if entry.get("field") == field:
            return entry
    return {}


def _field_equal(ticket: Ticket, field: str) -> bool:
    return bool(_comparison_field(ticket, field).get("equal"))


def _field_closeness(ticket: Ticket, field: str) -> float | None:
    return _comparison_field(ticket, field).get("closeness")


@staff_required
@require_POST
def ticket_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    """Run one desk action; refusals are a clear message on the ticket page, never a 500."""
    _get_ticket_for_agent(reference)
    actor: Account = request.user  # type: ignore[assignment]
    request_id = request.headers.get("X-Request-Id", "")[:64]
    try:
        if action == "claim":
            ticket_claim(reference=reference, actor=actor, request_id=request_id)
        elif action == "release":
            ticket_release(reference=reference, actor=actor, request_id=request_id)
        elif action == "confirm":
            form = CommentForm(request.POST)
            comment = form.cleaned_data["comment"] if form.is_valid() else ""
            ticket_confirm(reference=reference, actor=actor, comment=comment, request_id=request_id)
            messages.success(request, _("Confirmed: the outcome is on its way to the member."))
        elif action == "reject":
            form = RejectForm(request.POST)
            if not form.is_valid():
                raise TicketActionError("invalid_reason")
            ticket_reject(
                reference=reference,
                actor=actor,
                reason=form.cleaned_data["reason"],
                comment=form.cleaned_data["comment"],
                request_id=request_id,
            )
            messages.success(request, _("Rejected: the member will be told."))
        elif action == "flag-mismatch":
            form = CommentForm(request.POST)
            comment = form.cleaned_data["comment"] if form.is_valid() else ""
            ticket_flag_mismatch(
                reference=reference, actor=actor, comment=comment, request_id=request_id
            )
        elif action == "note":
            form = NoteForm(request.POST)
            if form.is_valid():
                ticket_note(
                    reference=reference,
                    actor=actor,
                    body=form.cleaned_data["body"],
                    request_id=request_id,
                )
            else:
                messages.error(request, _("A note cannot be empty."))
        else:
            raise Http404
    except TicketActionError as exc:
        security_log.info(
            "desk action refused action=%s ticket=%s user=%s code=%s",
            action,
            reference,
            actor.pk,
            exc.code,
        )
        ticket_record_refusal(
            reference=reference, actor=actor, action=action, code=exc.code, request_id=request_id
        )
        messages.error(request, ACTION_ERRORS.get(exc.code, _("This action is not possible.")))
    return redirect("desk_ticket", reference=reference)
