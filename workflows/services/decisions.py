"""Agents' decisions on tickets and the outcomes they carry out (after the transaction commits)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from members.eligibility import eligibility_from_coverages
from members.models import Account, AccountStatus, EmailChangeOutcome, EmailChangeRequest, Member
from members.services.accounts import (
    account_close,
    account_create_for_member,
    account_email_set,
    account_unfreeze,
    emails_differ,
)
from tickets.four_eyes import confirmation_risks
from tickets.models import (
    HIGH_RISK_REASON,
    OPEN_STATES,
    EventKind,
    RejectionReason,
    SendBackReason,
    Ticket,
    TicketKind,
    TicketState,
)
from tickets.services import (
    TicketActionError,
    event_record,
    ticket_check_approvable,
    ticket_check_decidable,
    ticket_lock,
    ticket_transition,
)
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.accounts import (
    email_change_by_support,
    email_change_notify,
    email_changes_cancel,
)
from workflows.services.outbox import outbox_enqueue
from workflows.services.veto import VetoAnswer, veto_ask, veto_enabled


def _check_outcome_possible(ticket: Ticket) -> Account | None:
    """Refuse a confirmation whose outcome cannot be carried out; return the member's account."""
    member: Member | None = ticket.member
    if member is None:
        raise TicketActionError("no_registry_member")
    account = Account.objects.select_for_update().filter(member=member).first()
    if ticket.kind == TicketKind.REGISTRATION:
        eligibility = eligibility_from_coverages(member.coverages.all(), on=timezone.localdate())
        if not eligibility.eligible:
            raise TicketActionError("not_eligible")
        if account is not None:
            raise TicketActionError("already_registered")
        return None
    if account is None or account.status == AccountStatus.CLOSED:
        raise TicketActionError("no_active_account")
    # A frozen account ("this was not me") is only unfrozen by confirming an access ticket.
    if account.is_frozen and ticket.kind != TicketKind.ACCESS:
        raise TicketActionError("account_frozen")
    return account


@transaction.atomic
def ticket_confirm(
    *,
    reference: str,
    actor: Account,
    comment: str = "",
    request_id: str = "",
    in_bulk: bool = False,
) -> Ticket:
    """Confirm the member's identity and carry out the request; e-mails go after commit.

    A risky confirmation (tickets.four_eyes) is only recorded: the ticket waits in
    `awaiting_approval` for a second, different staff member; nothing is carried out or e-mailed.
    `in_bulk`: the confirmation is one of many chosen together (any bulk path must say so); a
    high-risk ticket is then refused (`high_risk`): it is only ever confirmed on its own.
    """
    ticket = ticket_lock(reference=reference)
    ticket_check_decidable(ticket=ticket, actor=actor)
    if in_bulk and ticket.is_high_risk:
        raise TicketActionError(HIGH_RISK_REASON)
    account = _check_outcome_possible(ticket)
    risks = confirmation_risks(ticket)
    if risks:
        ticket_transition(
            ticket=ticket,
            transition_name="request_approval",
            actor=actor,
            reason="four_eyes",
            body=comment,
            request_id=request_id,
            data={"risks": risks},
            args=(actor, risks),
        )
        return ticket
    ticket.decided_by = actor
    ticket_transition(
        ticket=ticket,
        transition_name="confirm",
        actor=actor,
        body=comment,
        request_id=request_id,
    )
    _carry_out(ticket=ticket, account=account, actor=actor, request_id=request_id)
    return ticket


def ticket_approve(
    *, reference: str, actor: Account, comment: str = "", request_id: str = ""
) -> Ticket:
    """A second staff member approves a risky confirmation: it is carried out as `confirm` is.

    With the fraud veto hook configured (workflows.services.veto), the fraud engine is asked
    first, outside any transaction and lock; unless it allows, nothing is carried out and the
    ticket stays in `awaiting_approval` with the answer in its history (fail closed).
    """
    if not veto_enabled():
        return _ticket_approve(
            reference=reference, actor=actor, comment=comment, request_id=request_id
        )
    ticket = Ticket.objects.select_related("member").get(reference=reference)
    ticket_check_approvable(ticket=ticket, actor=actor)  # no question asked for a refused action
    answer = veto_ask(ticket=ticket)
    if not answer.allows:
        return ticket_veto_hold(
            reference=reference, actor=actor, answer=answer, request_id=request_id
        )
    return _ticket_approve(
        reference=reference,
        actor=actor,
        comment=comment,
        request_id=request_id,
        veto=(answer, ticket.approval_requested_at),
    )


@transaction.atomic
def ticket_veto_hold(
    *, reference: str, actor: Account, answer: VetoAnswer, request_id: str = ""
) -> Ticket:
    """The fraud engine did not allow (or could not be heard): record it; nothing carried out."""
    ticket = ticket_lock(reference=reference)
    event_record(
        ticket=ticket,
        kind=EventKind.FRAUD_CHECK,
        actor=actor,
        reason=f"fraud_check_{answer.decision}",
        body=answer.reason,
        data=answer.history_data(),
        request_id=request_id,
    )
    return ticket


@transaction.atomic
def _ticket_approve(
    *,
    reference: str,
    actor: Account,
    comment: str,
    request_id: str,
    veto: tuple[VetoAnswer, datetime | None] | None = None,
) -> Ticket:
    ticket = ticket_lock(reference=reference)
    ticket_check_approvable(ticket=ticket, actor=actor)
    if veto is not None:
        answer, asked_for = veto
        # The engine answered about the approval request it saw: if the ticket was sent back
        # and asked for again meanwhile (other reasons, other maker), that answer is stale.
        if ticket.approval_requested_at != asked_for:
            raise TicketActionError("fraud_check_stale")
        event_record(
            ticket=ticket,
            kind=EventKind.FRAUD_CHECK,
            actor=actor,
            reason="fraud_check_allow",
            body=answer.reason,
            data=answer.history_data(),
            request_id=request_id,
        )
    account = _check_outcome_possible(ticket)
    maker = ticket.approval_requested_by
    risks = list(ticket.approval_reasons)
    ticket_transition(
        ticket=ticket,
        transition_name="approve",
        actor=actor,
        reason="approved",
        body=comment,
        request_id=request_id,
        data={"maker": maker.username if maker else "", "risks": risks},
        args=(actor,),
    )
    _carry_out(ticket=ticket, account=account, actor=actor, request_id=request_id)
    return ticket


@transaction.atomic
def ticket_send_back(
    *, reference: str, actor: Account, reason: str, comment: str = "", request_id: str = ""
) -> Ticket:
    """The approver refuses a risky confirmation: back to the desk, with a reason; no e-mail."""
    if reason not in SendBackReason.values:
        raise TicketActionError("invalid_reason")
    ticket = ticket_lock(reference=reference)
    ticket_check_approvable(ticket=ticket, actor=actor)
    maker = ticket.approval_requested_by
    risks = list(ticket.approval_reasons)
    ticket_transition(
        ticket=ticket,
        transition_name="send_back",
        actor=actor,
        reason=reason,
        body=comment,
        request_id=request_id,
        data={"maker": maker.username if maker else "", "risks": risks},
        args=(actor,),
    )
    return ticket


def _carry_out(*, ticket: Ticket, account: Account | None, actor: Account, request_id: str) -> None:
    """The outcome of a confirmed ticket, by kind; every step is in the ticket's history."""
    if ticket.kind == TicketKind.REGISTRATION:
        member = ticket.member
        if member is None:  # guarded by the transition's condition; kept for the type checker
            raise TicketActionError("no_registry_member")
        account = account_create_for_member(
            member=member,
            email=ticket.submitted_email,
            secret_question=ticket.secret_question,
            secret_answer_hash=ticket.secret_answer_hash,
        )
        event_record(ticket=ticket, kind=EventKind.OUTCOME, actor=actor, reason="account_created")
        _send_credentials(ticket=ticket, account=account, recipient=account.email)
        return
    if account is None:
        raise TicketActionError("no_active_account")
    if ticket.kind == TicketKind.ACCESS and account.is_frozen:
        # An agent's decision (four-eyes: the veto's ticket is high risk): active again, and
        # new codes to the address on file — never to an address typed on a request.
        account_unfreeze(account=account)
        event_record(ticket=ticket, kind=EventKind.OUTCOME, actor=actor, reason="account_unfrozen")
        _send_credentials(ticket=ticket, account=account, recipient=account.email)
        return
    if ticket.kind in (TicketKind.RECOVERY, TicketKind.ACCESS):
        if ticket.requested_email and ticket.secret_answer_verified:
            # The codes go to the new address, so they wait with it: queued when it applies.
            _change_email(
                ticket=ticket,
                account=account,
                new_email=ticket.requested_email,
                actor=actor,
                codes_after=True,
            )
            return
        _send_credentials(ticket=ticket, account=account, recipient=account.email)
    elif ticket.kind == TicketKind.EMAIL_CHANGE:
        _change_email(ticket=ticket, account=account, new_email=ticket.requested_email, actor=actor)
    elif ticket.kind == TicketKind.CLOSURE:
        email_changes_cancel(account=account, outcome=EmailChangeOutcome.CLOSED)
        account_close(account=account)
        event_record(ticket=ticket, kind=EventKind.OUTCOME, actor=actor, reason="account_closed")
        outbox_enqueue(
            template=EmailTemplate.ACCOUNT_CLOSED,
            recipient=account.email,
            language=ticket.language,
            ticket=ticket,
            account=account,
        )


def _send_credentials(*, ticket: Ticket, account: Account, recipient: str) -> None:
    """Queue the codes e-mail; the worker generates the password when it sends it."""
    outbox_enqueue(
        template=EmailTemplate.CREDENTIALS,
        recipient=recipient,
        language=ticket.language,
        ticket=ticket,
        account=account,
    )


# The kinds whose outcome is a codes e-mail, hence the ones whose codes can be re-issued.
CODES_KINDS = (TicketKind.REGISTRATION, TicketKind.RECOVERY, TicketKind.ACCESS)


# A recovery's codes waited with its change of address, which then never applied for one of
# these (the member is not frozen nor closed): nobody got codes, the desk may send them.
CODES_LOST_WITH_CHANGE = (EmailChangeOutcome.SUPERSEDED, EmailChangeOutcome.CANCELLED)


def codes_reissue_cause(ticket: Ticket) -> str:
    """Why the ticket's codes may be re-issued: `failed` (its latest codes e-mail failed for
    good, its password withdrawn), `change_ended` (its codes waited with a change of address
    that was replaced or cancelled, so none were ever queued), or "" (not re-issuable)."""
    if ticket.state != TicketState.CONFIRMED or ticket.kind not in CODES_KINDS:
        return ""
    latest = (
        OutboxMessage.objects.filter(ticket=ticket, template=EmailTemplate.CREDENTIALS)
        .order_by("-created_at", "-id")
        .values_list("status", flat=True)
        .first()
    )
    if latest == OutboxStatus.FAILED:
        return "failed"
    if latest is None and (
        EmailChangeRequest.objects.filter(
            ticket_reference=ticket.reference,
            codes_after=True,
            outcome__in=CODES_LOST_WITH_CHANGE,
        ).exists()
    ):
        return "change_ended"
    return ""


def codes_reissuable(ticket: Ticket) -> bool:
    """Tell whether the desk may send the ticket new codes (`codes_reissue_cause`)."""
    return bool(codes_reissue_cause(ticket))


@transaction.atomic
def ticket_codes_reissue(*, reference: str, actor: Account, request_id: str = "") -> Ticket:
    """Send new codes after the codes e-mail failed for good (docs/product.md, "Codes"), or
    when a recovery's codes waited with a change of address that was replaced or cancelled.

    Only for a confirmed ticket whose codes are re-issuable (`codes_reissue_cause`); to the
    e-mail on file (which the agent may have corrected since through an e-mail change). Recorded
    as an outcome by the agent; the worker generates the new password at send time, as for any
    codes e-mail.
    """
    ticket = ticket_lock(reference=reference)
    if not actor.has_perm("tickets.decide_ticket"):
        raise TicketActionError("forbidden")
    if not codes_reissuable(ticket):
        raise TicketActionError("codes_not_failed")
    member = ticket.member
    account = Account.objects.select_for_update().filter(member=member).first() if member else None
    if account is None or account.status == AccountStatus.CLOSED or not account.is_active:
        raise TicketActionError("no_active_account")
    event_record(
        ticket=ticket,
        kind=EventKind.OUTCOME,
        actor=actor,
        reason="codes_reissued",
        request_id=request_id,
    )
    _send_credentials(ticket=ticket, account=account, recipient=account.email)
    return ticket


def _change_email(
    *, ticket: Ticket, account: Account, new_email: str, actor: Account, codes_after: bool = False
) -> None:
    """Replace the e-mail on file after the waiting time (docs/product.md, "E-mail changes
    wait"): pending now, the old address told with its veto link; the beat applies it."""
    if not new_email:
        raise TicketActionError("no_new_email")
    if account.email and not emails_differ(account.email, new_email):
        # The same mailbox (case aside): nothing to wait for, nothing to veto; at once. A change
        # still waiting is replaced, as by any newer request: it must not apply later.
        email_changes_cancel(
            account=account, outcome=EmailChangeOutcome.SUPERSEDED, skip=ticket.reference
        )
        old_email = account_email_set(account=account, new_email=new_email)
        event_record(ticket=ticket, kind=EventKind.OUTCOME, actor=actor, reason="email_changed")
        email_change_notify(
            account=account,
            old_email=old_email,
            new_email=new_email,
            language=ticket.language,
            ticket=ticket,
        )
        if codes_after:
            _send_credentials(ticket=ticket, account=account, recipient=new_email)
        return
    email_change_by_support(
        ticket=ticket, account=account, new_email=new_email, actor=actor, codes_after=codes_after
    )


@transaction.atomic
def ticket_reject(
    *, reference: str, actor: Account, reason: str, comment: str = "", request_id: str = ""
) -> Ticket:
    """Reject a request with a reason code; the member gets wording that reveals nothing."""
    if reason not in RejectionReason.values or reason == RejectionReason.EXPIRED:
        raise TicketActionError("invalid_reason")
    ticket = ticket_lock(reference=reference)
    ticket_check_decidable(ticket=ticket, actor=actor)
    ticket.decided_by = actor
    ticket_transition(
        ticket=ticket,
        transition_name="reject",
        actor=actor,
        reason=reason,
        body=comment,
        request_id=request_id,
        args=(reason,),
    )
    _send_rejection(ticket)
    return ticket


def _send_rejection(ticket: Ticket) -> None:
    """The rejection e-mail goes to the address typed on the request (nothing else is known)."""
    # `already_registered` gets the same neutral rejection, which already says "if you have an
    # account, use forgotten codes": a distinct e-mail would tell whoever typed someone else's
    # details that this person holds an account (issue 3; docs/product.md §3).
    template = EmailTemplate.REJECTION
    if ticket.rejection_reason == RejectionReason.EXPIRED:
        template = EmailTemplate.EXPIRED
    recipient = ticket.submitted_email
    if not recipient:
        return
    outbox_enqueue(template=template, recipient=recipient, language=ticket.language, ticket=ticket)


@transaction.atomic
def ticket_flag_mismatch(
    *, reference: str, actor: Account, comment: str = "", request_id: str = ""
) -> Ticket:
    """Send a pending ticket to the identity-mismatch queue for a closer look."""
    ticket = ticket_lock(reference=reference)
    ticket_check_decidable(ticket=ticket, actor=actor)
    ticket_transition(
        ticket=ticket,
        transition_name="flag_mismatch",
        actor=actor,
        body=comment,
        request_id=request_id,
    )
    return ticket


def tickets_expire_stale(*, now: datetime | None = None, batch: int = 500) -> int:
    """Reject, as the system, open requests older than GUICHET_REQUEST_EXPIRY_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.GUICHET_REQUEST_EXPIRY_DAYS)
    references = list(
        Ticket.objects.filter(state__in=OPEN_STATES, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("reference", flat=True)[:batch]
    )
    expired = 0
    for reference in references:
        with transaction.atomic():
            ticket = ticket_lock(reference=reference)
            if not ticket.is_open:
                continue
            ticket_transition(
                ticket=ticket,
                transition_name="expire",
                actor=None,
                reason=RejectionReason.EXPIRED,
            )
            _send_rejection(ticket)
            expired += 1
    return expired


__all__ = [
    "ticket_approve",
    "ticket_confirm",
    "ticket_flag_mismatch",
    "ticket_reject",
    "ticket_send_back",
    "ticket_veto_hold",
    "tickets_expire_stale",
]
