"""The agents' desk: login, queues, one ticket and its actions, on-behalf tickets, members."""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.cache import cache
from django.core.exceptions import FieldError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agentdesk.forms import (
    CommentForm,
    NoteForm,
    OnBehalfForm,
    RejectForm,
    RevealForm,
    SearchForm,
    SendBackForm,
)
from core.logging import current_request_id
from members.eligibility import Eligibility, eligibility_from_coverages
from members.forms import DeskLoginForm, SecondFactorForm
from members.masking import mask_birth_date, mask_nir
from members.models import AccessKind, Account, Member
from members.second_factor import (
    backup_codes_issue,
    confirmed_device,
    enrolment_confirm,
    enrolment_resume,
    enrolment_start,
    pending_device,
    second_factor_check,
    session_verify,
)
from members.services.access_journal import access_record
from tickets.access import staff_required, step_up_prompt
from tickets.claims import ClaimState
from tickets.filters import QUEUE_CHOICES, TicketFilter, overdue_cutoffs
from tickets.four_eyes import is_maker, risk_labels
from tickets.models import REFERENCE_REGEX, Ticket, TicketState
from tickets.selectors import (
    keyset_page,
    member_for_desk,
    member_other_tickets,
    member_search,
    queue_tickets,
    staff_accounts,
    ticket_emails,
    ticket_for_desk,
    ticket_history,
)
from tickets.services import (
    TicketActionError,
    ticket_claim,
    ticket_note,
    ticket_record_refusal,
    ticket_release,
)
from tickets.tables import TicketTable
from workflows import risk
from workflows.identity import compare_identity, diff_segments
from workflows.services.decisions import (
    codes_reissue_cause,
    ticket_approve,
    ticket_codes_reissue,
    ticket_confirm,
    ticket_flag_mismatch,
    ticket_reject,
    ticket_send_back,
)
from workflows.services.intake import RequestData, request_intake

security_log = logging.getLogger("guichet.security")

ACTION_ERRORS = {
    "already_decided": gettext_lazy("This ticket has already been decided."),
    "claimed_by_other": gettext_lazy(
        "Another agent has claimed this ticket: only they (or a supervisor) can act on it."
    ),
    "not_allowed_in_state": gettext_lazy(
        "This action is not possible in the ticket's current state."
    ),
    "forbidden": gettext_lazy("You are not allowed to do this."),
    "account_frozen": gettext_lazy(
        "The account is frozen (the member said it was not them): only an access request "
        "can unfreeze it."
    ),
    "high_risk": gettext_lazy(
        "This request shows strong takeover signals: it is never confirmed in bulk."
    ),
    "no_registry_member": gettext_lazy(
        "No registry member is matched: this request cannot be confirmed."
    ),
    "not_eligible": gettext_lazy("The member is not eligible for an account."),
    "already_registered": gettext_lazy("The member already has an account."),
    "no_active_account": gettext_lazy("The member has no active account."),
    "invalid_reason": gettext_lazy("Choose a reason from the list."),
    "no_new_email": gettext_lazy("The request carries no new e-mail address."),
    "awaiting_approval": gettext_lazy(
        "This confirmation is waiting for a second staff member's approval."
    ),
    "not_awaiting_approval": gettext_lazy("This ticket is not waiting for an approval."),
    "own_confirmation": gettext_lazy(
        "You asked for this confirmation: another staff member must approve it."
    ),
    "fraud_check_stale": gettext_lazy(
        "The ticket changed while the fraud check was running: nothing was carried out. Look at"
        " it again."
    ),
    "codes_not_failed": gettext_lazy(
        "Codes can be re-issued only after the codes e-mail failed for good."
    ),
}
ACTION_DONE = {
    "claim": gettext_lazy("You have claimed this ticket."),
    "release": gettext_lazy("The ticket is back in the queue."),
    "confirm": gettext_lazy("Confirmed: the outcome is on its way to the member."),
    "approve": gettext_lazy("Approved: the outcome is on its way to the member."),
    "send-back": gettext_lazy("Sent back to the desk: nothing was carried out."),
    "request-approval": gettext_lazy(
        "Recorded: this confirmation needs a second staff member's approval. Nothing is carried"
        " out or e-mailed until then."
    ),
    "reject": gettext_lazy("Rejected: the member will be told."),
    "fraud-check-hold": gettext_lazy(
        "The fraud check did not allow this confirmation (or could not be reached): nothing was"
        " carried out. The ticket stays waiting for approval; its history shows the answer."
    ),
    "flag-mismatch": gettext_lazy("Sent to the identity-mismatch queue."),
    "note": gettext_lazy("Note added."),
    "reissue-codes": gettext_lazy("New codes are on their way to the e-mail on file."),
}
ELIGIBILITY_REASONS = {
    "eligible": gettext_lazy("holds an eligible coverage"),
    "beneficiary_only": gettext_lazy("beneficiary only: the principal insured's account applies"),
    "no_active_coverage": gettext_lazy("no coverage in force"),
}
PAGE_PARAMS = ("after", "before")
# A reveal shows the NIR and birth date of one record, in this session, for five minutes.
REVEAL_SECONDS = 5 * 60
REVEALS_SESSION_KEY = "desk_reveals"


def _reveal_key(*, ticket: str = "", member: str = "") -> str:
    return f"ticket:{ticket}" if ticket else f"member:{member}"


def _revealed(request: HttpRequest, key: str) -> bool:
    """Whether the agent revealed this record's masked data less than REVEAL_SECONDS ago."""
    until = request.session.get(REVEALS_SESSION_KEY, {}).get(key, 0)
    return bool(until and until > timezone.now().timestamp())


def _reveal_remember(request: HttpRequest, key: str) -> None:
    now = timezone.now().timestamp()
    reveals = {k: v for k, v in request.session.get(REVEALS_SESSION_KEY, {}).items() if v > now}
    reveals[key] = now + REVEAL_SECONDS
    request.session[REVEALS_SESSION_KEY] = reveals


# Decisions that send codes, change an e-mail or close an account: a fresh second factor (§41).
STEP_UP_ACTIONS = frozenset({"confirm", "approve", "reissue-codes"})


def _request_id(request: HttpRequest) -> str:
    """The id RequestIdMiddleware validated or generated, never the raw header (no forging)."""
    return current_request_id()


SELECT_FILTERS = ("state", "kind", "channel", "risk", "assignee", "age")
STAFF_CHOICES_CACHE_KEY = "desk:staff-choices"


def _staff_choices() -> list[tuple[str, str]]:
    """The assignee filter's options, cached a minute: the list changes rarely."""
    # get_or_set returns the cached or the computed list (None only if None were cached).
    return cast(
        "list[tuple[str, str]]",
        cache.get_or_set(
            STAFF_CHOICES_CACHE_KEY,
            lambda: [
                (str(pk), name) for pk, name in staff_accounts().values_list("pk", "username")
            ],
            60,
        ),
    )


def _filter_controls(filterset: TicketFilter) -> list[dict[str, Any]]:
    """The filter form's selects as plain data: rendering Django widgets through their
    templates costs more than the queue's own query (one template per <option>)."""
    form = filterset.form
    controls = []
    for name in SELECT_FILTERS:
        field = form.fields[name]
        if name == "assignee":
            choices = _staff_choices()
        else:
            choices = [(str(value), label) for value, label in field.choices if value != ""]
        controls.append(
            {
                "name": name,
                "label": field.label,
                "choices": choices,
                "value": str(filterset.data.get(name, "")),
                "errors": form.errors.get(name, []),
            }
        )
    return controls


def _query_without(request: HttpRequest, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def desk_login(request: HttpRequest) -> HttpResponse:
    form = DeskLoginForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.account is not None:
        # Logged in on the password alone: SecondFactorMiddleware keeps every staff page shut
        # until the second-factor step below has verified a code (docs/security.md §40).
        login(request, form.account)
        return redirect(
            f"{reverse('desk_second_factor')}?{urlencode({'next': _next_url(request)})}"
        )
    return render(request, "desk/login.html", {"form": form})


def _next_url(request: HttpRequest) -> str:
    next_url = request.GET.get("next", "")
    if not next_url.startswith("/desk/") or next_url.startswith("//"):
        next_url = reverse("desk_queue")
    return next_url


SECOND_FACTOR_ERROR = gettext_lazy("This code is not valid. Type the code your app shows now.")
SECOND_FACTOR_LOCKED = gettext_lazy(
    "Too many wrong codes: wait a few minutes and try again, or ask a supervisor."
)


@sensitive_post_parameters("otp_token")
@require_http_methods(["GET", "POST"])
def desk_second_factor(request: HttpRequest) -> HttpResponse:
    """After the password: enrol an authenticator (first login) or type its current code."""
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return redirect("desk_login")
    account = user
    device = confirmed_device(account)
    form = SecondFactorForm(request.POST or None)
    if device is None:
        return _enrol(request, account, form)
    if request.method == "POST" and form.is_valid():
        result = second_factor_check(
            request=request, account=account, device=device, token=form.cleaned_data["otp_token"]
        )
        if result.ok:
            session_verify(request, device)
            return redirect(_next_url(request))
        form.add_error("otp_token", SECOND_FACTOR_LOCKED if result.locked else SECOND_FACTOR_ERROR)
    return render(request, "desk/second_factor.html", {"form": form})


def _enrol(request: HttpRequest, account: Account, form: SecondFactorForm) -> HttpResponse:
    """A fresh key on each visit (shown only then); the first right code turns it on."""
    pending = pending_device(account)
    if request.method == "POST" and pending is not None and form.is_valid():
        result = enrolment_confirm(
            request=request, account=account, device=pending, token=form.cleaned_data["otp_token"]
        )
        if result.ok:
            session_verify(request, pending)
            codes = backup_codes_issue(account=account)
            return render(
                request,
                "desk/backup_codes.html",
                {"codes": codes, "next_url": _next_url(request)},
            )
        form.add_error("otp_token", SECOND_FACTOR_LOCKED if result.locked else SECOND_FACTOR_ERROR)
    if request.method == "POST" and pending is not None:
        enrolment = enrolment_resume(account=account, device=pending)
    else:
        enrolment = enrolment_start(account=account)
    return render(request, "desk/second_factor_enrol.html", {"form": form, "enrolment": enrolment})


@require_POST
def desk_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("desk_login")


@staff_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """A queue: a TicketFilter over the tickets, one keyset page, oldest first by default."""
    filterset = TicketFilter(request.GET, queryset=queue_tickets(), request=request)
    queue_key = filterset.queue_key
    default_sort = "decided_at" if queue_key == "decided_today" else "created_at"
    if filterset.is_name_search:
        default_sort = "name"
    page = keyset_page(
        filterset.qs,
        sort=request.GET.get("sort", default_sort),
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    if queue_key != "decided_today" and page.sort.lstrip("-") == "decided_at":
        page = keyset_page(filterset.qs, sort="created_at")
    table = TicketTable(
        page.rows,
        order_by=page.sort,
        cutoffs=overdue_cutoffs(filterset.now),
        exclude=() if queue_key == "decided_today" else ("decided_at",),
    )
    paging_query = _query_without(request, *PAGE_PARAMS)
    return render(
        request,
        "desk/queue.html",
        {
            "table": table,
            "filter": filterset,
            "filter_controls": _filter_controls(filterset),
            "overdue": filterset.form.cleaned_data.get("overdue")
            if filterset.is_valid()
            else False,
            "queue_key": queue_key,
            "queues": QUEUE_CHOICES,
            "page": page,
            "paging_query": paging_query,
            "sort_query": _query_without(request, "sort", *PAGE_PARAMS),
            "next_query": urlencode({"after": page.next_cursor}) if page.next_cursor else "",
            "previous_query": (
                urlencode({"before": page.previous_cursor}) if page.previous_cursor else ""
            ),
        },
    )


def _comparison_rows(
    ticket: Ticket, member: Member | None, *, revealed: bool
) -> list[dict[str, Any]]:
    """What the member typed beside the registry, field by field, differences marked.

    Unless revealed, the NIR and birth date show only their last characters; whether they
    match is still shown.
    """
    if member is None:
        return []
    identity = {
        f.field: f
        for f in compare_identity(
            submitted_last_name=ticket.submitted_last_name,
            submitted_first_name=ticket.submitted_first_name,
            submitted_birth_date=ticket.submitted_birth_date or datetime.date.min,
            registry_last_name=member.last_name,
            registry_first_name=member.first_name,
            registry_birth_date=member.birth_date,
        ).fields
    }
    typed_birth = (
        ticket.submitted_birth_date.strftime("%d/%m/%Y") if ticket.submitted_birth_date else ""
    )
    rows = [
        (_("Last name"), ticket.submitted_last_name, member.last_name, identity["last_name"]),
        (_("First name"), ticket.submitted_first_name, member.first_name, identity["first_name"]),
        (
            _("Birth date"),
            typed_birth,
            member.birth_date.strftime("%d/%m/%Y"),
            identity["birth_date"] if ticket.submitted_birth_date else None,
        ),
        (_("Member ID"), ticket.submitted_member_number, member.member_number, None),
        (_("Social-security number"), ticket.submitted_nir, member.nir, None),
        (_("E-mail"), ticket.submitted_email, member.email, None),
    ]
    masked = {
        str(_("Birth date")): (
            mask_birth_date(ticket.submitted_birth_date),
            mask_birth_date(member.birth_date),
        ),
        str(_("Social-security number")): (mask_nir(ticket.submitted_nir), mask_nir(member.nir)),
    }
    result = []
    for label, typed, registry, compared in rows:
        equal = compared.equal if compared is not None else typed.casefold() == registry.casefold()
        if not revealed and str(label) in masked:
            shown_typed, shown_registry = masked[str(label)]
            result.append(
                {
                    "label": label,
                    "typed": [(shown_typed, False)] if typed else [],
                    "registry": [(shown_registry, False)],
                    "given": bool(typed),
                    "equal": equal,
                    "closeness": compared.closeness if compared is not None else None,
                    "masked": True,
                }
            )
            continue
        result.append(
            {
                "label": label,
                "typed": diff_segments(typed, registry) if typed else [],
                "registry": diff_segments(registry, typed) if typed else [(registry, False)],
                "given": bool(typed),
                "equal": equal,
                "closeness": compared.closeness if compared is not None else None,
            }
        )
    return result


def _account_of(member: Member | None) -> Account | None:
    if member is None:
        return None
    try:
        return member.account
    except Account.DoesNotExist:
        return None


def _eligibility(member: Member | None) -> tuple[Eligibility | None, str]:
    if member is None:
        return None, ""
    verdict = eligibility_from_coverages(member.coverages.all(), on=timezone.localdate())
    return verdict, str(ELIGIBILITY_REASONS.get(verdict.reason, verdict.reason))


def _redirect_alias(reference: str) -> HttpResponse | None:
    """A repeat request's own reference leads to the ticket it was attached to."""
    try:
        target = (
            Ticket.objects.filter(aliases__reference=reference.upper())
            .values_list("reference", flat=True)
            .first()
        )
    except FieldError:  # the alias model is optional
        return None
    return redirect("desk_ticket", reference=target) if target else None


@staff_required
@require_GET
def ticket_detail(request: HttpRequest, reference: str) -> HttpResponse:
    if not re.fullmatch(REFERENCE_REGEX, reference):  # NUL bytes would 500 on PostgreSQL
        raise Http404
    try:
        ticket = ticket_for_desk(reference=reference)
    except Ticket.DoesNotExist:
        alias = _redirect_alias(reference)
        if alias is not None:
            return alias
        raise Http404 from None
    user: Account = request.user  # type: ignore[assignment]
    member = ticket.member
    access_record(
        actor=user,
        kind=AccessKind.TICKET_VIEW,
        member_id=ticket.member_id,
        ticket_reference=ticket.reference,
    )
    revealed = _revealed(request, _reveal_key(ticket=ticket.reference))
    eligibility, eligibility_reason = _eligibility(member)
    claim = ClaimState.of(ticket, user)
    transitions: set[str] = set()
    if ticket.is_open and not claim.blocked:
        # django_fsm adds get_available_user_<field>_transitions at class_prepared: no stub sees it.
        available = ticket.get_available_user_state_transitions(user)  # type: ignore[attr-defined]
        transitions = {t.name for t in available}
    return render(
        request,
        "desk/ticket.html",
        {
            "ticket": ticket,
            "member": member,
            "account": _account_of(member),
            "comparison": _comparison_rows(ticket, member, revealed=revealed),
            "revealed": revealed,
            "masked_nir": mask_nir(ticket.submitted_nir),
            "masked_birth_date": mask_birth_date(ticket.submitted_birth_date),
            "reveal_form": RevealForm(),
            "reveal_url": reverse("desk_ticket_reveal", args=[ticket.reference]),
            "names_swapped": ticket.match_details.get("comparison", {}).get("names_swapped"),
            "risk_sentences": [risk.signal_sentence(signal) for signal in ticket.risk_signals],
            "eligibility": eligibility,
            "eligibility_reason": eligibility_reason,
            "other_tickets": member_other_tickets(member_id=ticket.member_id, exclude_pk=ticket.pk),
            "history": ticket_history(ticket=ticket),
            "emails": ticket_emails(ticket=ticket),
            "claim": claim,
            "transitions": transitions,
            "codes_reissue_cause": codes_reissue_cause(ticket),
            "reject_form": RejectForm(),
            "send_back_form": SendBackForm(),
            "approval_risks": risk_labels(list(ticket.approval_reasons)),
            "is_maker": is_maker(ticket, user),
            "comment_form": CommentForm(),
            "note_form": NoteForm(),
        },
    )


def _run_action(request: HttpRequest, reference: str, action: str, actor: Account) -> str:
    """Validate the action's form and call its service; raise TicketActionError to refuse.

    Returns the key of the message to show (ACTION_DONE)."""
    request_id = _request_id(request)
    if action == "claim":
        ticket_claim(reference=reference, actor=actor, request_id=request_id)
    elif action == "release":
        ticket_release(reference=reference, actor=actor, request_id=request_id)
    elif action in ("confirm", "flag-mismatch"):
        form = CommentForm(request.POST)
        comment = form.cleaned_data["comment"] if form.is_valid() else ""
        service = ticket_confirm if action == "confirm" else ticket_flag_mismatch
        ticket = service(reference=reference, actor=actor, comment=comment, request_id=request_id)
        if ticket.state == TicketState.AWAITING_APPROVAL:
            return "request-approval"
    elif action == "approve":
        form = CommentForm(request.POST)
        comment = form.cleaned_data["comment"] if form.is_valid() else ""
        ticket = ticket_approve(
            reference=reference, actor=actor, comment=comment, request_id=request_id
        )
        if ticket.state == TicketState.AWAITING_APPROVAL:  # the fraud check did not allow it
            return "fraud-check-hold"
    elif action == "send-back":
        send_back_form = SendBackForm(request.POST)
        if not send_back_form.is_valid():
            raise TicketActionError("invalid_reason")
        ticket_send_back(
            reference=reference,
            actor=actor,
            reason=send_back_form.cleaned_data["reason"],
            comment=send_back_form.cleaned_data["comment"],
            request_id=request_id,
        )
    elif action == "reject":
        reject_form = RejectForm(request.POST)
        if not reject_form.is_valid():
            raise TicketActionError("invalid_reason")
        ticket_reject(
            reference=reference,
            actor=actor,
            reason=reject_form.cleaned_data["reason"],
            comment=reject_form.cleaned_data["comment"],
            request_id=request_id,
        )
    elif action == "reissue-codes":
        ticket_codes_reissue(reference=reference, actor=actor, request_id=request_id)
    elif action == "note":
        note = NoteForm(request.POST)
        if not note.is_valid():
            raise TicketActionError("empty_note")
        ticket_note(
            reference=reference, actor=actor, body=note.cleaned_data["body"], request_id=request_id
        )
    else:
        raise Http404
    return action


@staff_required
@require_POST
def ticket_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    """Run one desk action; refusals are a clear message on the ticket page, never a 500."""
    if not Ticket.objects.filter(reference=reference).exists():
        raise Http404
    if action in STEP_UP_ACTIONS:
        prompt = step_up_prompt(request)
        if prompt is not None:
            return cast("HttpResponse", prompt)
    actor: Account = request.user  # type: ignore[assignment]
    try:
        done = _run_action(request, reference, action, actor)
    except TicketActionError as exc:
        if exc.code == "empty_note":
            messages.error(request, _("A note cannot be empty."))
            return redirect("desk_ticket", reference=reference)
        security_log.info(
            "desk action refused action=%s ticket=%s user=%s code=%s",
            action,
            reference,
            actor.pk,
            exc.code,
        )
        ticket_record_refusal(
            reference=reference,
            actor=actor,
            action=action,
            code=exc.code,
            request_id=_request_id(request),
        )
        messages.error(request, ACTION_ERRORS.get(exc.code, _("This action is not possible.")))
    else:
        notify = messages.warning if done == "fraud-check-hold" else messages.success
        notify(request, ACTION_DONE[done])
    return redirect("desk_ticket", reference=reference)


@sensitive_post_parameters("nir")
@staff_required
@require_http_methods(["GET", "POST"])
def ticket_new(request: HttpRequest) -> HttpResponse:
    """Record a request received by letter, phone or e-mail; it then follows the workflow."""
    form = OnBehalfForm(request.POST or None, initial={"kind": request.GET.get("kind", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        actor: Account = request.user  # type: ignore[assignment]
        with transaction.atomic():
            ticket = request_intake(
                data=RequestData.from_identity(
                    data,
                    kind=data["kind"],
                    channel=data["channel"],
                    requested_email=data["requested_email"],
                    message=data["message"],
                ),
                actor=actor,
                request_id=_request_id(request),
            ).ticket
            if data["note"]:
                ticket_note(reference=ticket.reference, actor=actor, body=data["note"])
        messages.success(request, _("Ticket %(reference)s recorded.") % {"reference": ticket})
        return redirect("desk_ticket", reference=ticket.reference)
    return render(request, "desk/ticket_new.html", {"form": form})


@staff_required
@require_GET
def members_search(request: HttpRequest) -> HttpResponse:
    """Registry search by member ID, NIR, e-mail or name prefix."""
    form = SearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    if query:
        # One row per search; the query itself may be a NIR, so it is not kept.
        user: Account = request.user  # type: ignore[assignment]
        access_record(actor=user, kind=AccessKind.REGISTRY_SEARCH)
    return render(
        request,
        "desk/members.html",
        {"form": form, "query": query, "members": member_search(query=query) if query else []},
    )


@staff_required
@require_GET
def member_detail(request: HttpRequest, member_number: str) -> HttpResponse:
    """One registry member: coverages, eligibility, account status, tickets."""
    try:
        member = member_for_desk(member_number=member_number)
    except Member.DoesNotExist:
        raise Http404 from None
    user: Account = request.user  # type: ignore[assignment]
    access_record(actor=user, kind=AccessKind.MEMBER_VIEW, member_id=member.pk)
    revealed = _revealed(request, _reveal_key(member=member.member_number))
    eligibility, eligibility_reason = _eligibility(member)
    return render(
        request,
        "desk/member.html",
        {
            "member": member,
            "revealed": revealed,
            "masked_nir": mask_nir(member.nir),
            "masked_birth_date": mask_birth_date(member.birth_date),
            "reveal_form": RevealForm(),
            "reveal_url": reverse("desk_member_reveal", args=[member.member_number]),
            "account": _account_of(member),
            "eligibility": eligibility,
            "eligibility_reason": eligibility_reason,
            "tickets": member_other_tickets(member_id=member.pk, limit=50),
        },
    )


def _reveal(
    request: HttpRequest, *, key: str, member_id: int | None, ticket_reference: str, back: str
) -> HttpResponse:
    form = RevealForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose why you need to see the data (or explain it)."))
        return redirect(back)
    user: Account = request.user  # type: ignore[assignment]
    access_record(
        actor=user,
        kind=AccessKind.REVEAL,
        member_id=member_id,
        ticket_reference=ticket_reference,
        reason=form.cleaned_data["reason"],
        reason_text=form.cleaned_data["reason_text"],
    )
    _reveal_remember(request, key)
    return redirect(back)


@staff_required
@require_POST
def ticket_reveal(request: HttpRequest, reference: str) -> HttpResponse:
    """Show the ticket page's NIR and birth date for a few minutes; the reason is journaled."""
    if not re.fullmatch(REFERENCE_REGEX, reference):
        raise Http404
    found = list(Ticket.objects.filter(reference=reference).values_list("member_id", flat=True))
    if not found:
        raise Http404
    return _reveal(
        request,
        key=_reveal_key(ticket=reference),
        member_id=found[0],
        ticket_reference=reference,
        back=reverse("desk_ticket", args=[reference]),
    )


@staff_required
@require_POST
def member_reveal(request: HttpRequest, member_number: str) -> HttpResponse:
    """Show a registry record's NIR and birth date for a few minutes; the reason is journaled."""
    found = list(Member.objects.filter(member_number=member_number).values_list("pk", flat=True))
    if not found:
        raise Http404
    return _reveal(
        request,
        key=_reveal_key(member=member_number),
        member_id=found[0],
        ticket_reference="",
        back=reverse("desk_member", args=[member_number]),
    )
