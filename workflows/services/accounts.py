"""Changes a member makes to their own account, and the e-mails that tell of account changes.

The writes themselves are `members.services.accounts`; this module composes them with the outbox.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account, AccountStatus, EmailChangeOutcome, EmailChangeRequest
from members.services.accounts import (
    account_email_change_requested,
    account_email_set,
    account_password_set,
    emails_differ,
)
from tickets.models import EventKind, Ticket, TicketEvent
from tickets.services import event_record
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.outbox import outbox_enqueue


@sensitive_variables("new_password")
@transaction.atomic
def account_password_change(*, account: Account, new_password: str, language: str) -> Account:
    """Set a member-chosen password; any temporary one stops working; the member is told."""
    account = account_password_set(account=account, new_password=new_password)
    if account.email:
        outbox_enqueue(
            template=EmailTemplate.PASSWORD_CHANGED,
            recipient=account.email,
            language=language,
            account=account,
        )
    return account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@transaction.atomic
def account_email_change_request(
    *, account: Account, new_email: str, language: str, send: bool = True
) -> EmailChangeRequest:
    """Start a self-service e-mail change: a link to confirm goes to the new address.

    Older pending requests of the account are superseded. The link's token is made by the worker
    when it sends the e-mail (delivery), so no secret ever sits in the database or the broker.
    `send=False` (the address's hourly e-mail budget is spent) stores the request, sends nothing.
    """
    account = Account.objects.select_for_update().get(pk=account.pk)
    email_changes_cancel(account=account, outcome=EmailChangeOutcome.SUPERSEDED)
    change = EmailChangeRequest.objects.create(
        account=account, new_email=new_email, language=language[:8]
    )
    if send:
        outbox_enqueue(
            template=EmailTemplate.EMAIL_CHANGE_CONFIRM,
            recipient=new_email,
            language=language,
            account=account,
            context={"email_change_id": change.pk},
        )
    return change


@sensitive_variables("token")
def email_change_token_issue(*, change_id: int) -> str | None:
    """Make the link's token at send time; store only its hash. None if no longer pending."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        change = (
            EmailChangeRequest.objects.select_for_update()
            .filter(pk=change_id, used_at=None, confirmed_at=None)
            .first()
        )
        if change is None:
            return None
        change.token_hash = _token_hash(token)
        change.expires_at = timezone.now() + timedelta(
            seconds=settings.GUICHET_EMAIL_CHANGE_LINK_SECONDS
        )
        change.save(update_fields=["token_hash", "expires_at"])
    return token


@sensitive_variables("token")
def email_change_pending(*, token: str) -> EmailChangeRequest | None:
    """The pending, unexpired request a link's token belongs to, or None."""
    if not token or len(token) > 100:
        return None
    change = (
        EmailChangeRequest.objects.select_related("account")
        .filter(token_hash=_token_hash(token), used_at=None, confirmed_at=None)
        .first()
    )
    if change is None or change.expires_at is None or change.expires_at <= timezone.now():
        return None
    if change.account.is_closed or not change.account.is_active:
        return None
    return change


@sensitive_variables("token")
@transaction.atomic
def account_email_change_confirm(*, token: str, language: str) -> EmailChangeRequest | None:
    """Follow a confirmation link once: the change becomes pending (or applies, with no delay)."""
    change = email_change_pending(token=token)
    if change is None:
        return None
    now = timezone.now()
    # The account's lock first, as every writer of these rows takes it (no deadlock).
    account = Account.objects.select_for_update().get(pk=change.account_id)
    # Single use even under a double submit: only one conditional update wins. The token's hash
    # goes with it: the link is spent, the row now waits for its time.
    won = EmailChangeRequest.objects.filter(pk=change.pk, used_at=None, confirmed_at=None).update(
        confirmed_at=now, token_hash="", language=language[:8]
    )
    if not won:
        return None
    change = EmailChangeRequest.objects.select_for_update().get(pk=change.pk)
    return email_change_schedule(change=change, account=account, now=now)


def email_change_delay() -> timedelta:
    """How long a confirmed change of the address waits for a veto (0 = applies at once)."""
    return timedelta(hours=settings.GUICHET_EMAIL_CHANGE_DELAY_HOURS)


def _ticket_locked(reference: str) -> Ticket | None:
    if not reference:
        return None
    ticket: Ticket | None = Ticket.objects.select_for_update().filter(reference=reference).first()
    return ticket


def email_change_schedule(
    *, change: EmailChangeRequest, account: Account, now: datetime, actor: Account | None = None
) -> EmailChangeRequest:
    """A confirmed change waits `GUICHET_EMAIL_CHANGE_DELAY_HOURS`; the old address is told at
    once, with its veto ("this was not me") link. The caller holds both rows' locks.

    With no delay (a lab) it applies at once. Nothing goes to the new address until it applies.
    """
    change.confirmed_at = change.confirmed_at or now
    change.applies_at = now + email_change_delay()
    change.save(update_fields=["confirmed_at", "applies_at"])
    account_email_change_requested(account=account, at=now)
    if not email_change_delay():
        email_change_apply_locked(change=change, account=account, now=now, actor=actor)
        return change
    ticket = _ticket_locked(change.ticket_reference)
    if ticket is not None:
        event_record(
            ticket=ticket,
            kind=EventKind.OUTCOME,
            actor=actor,
            reason="email_change_pending",
            data={"applies_at": change.applies_at.isoformat(), "codes_after": change.codes_after},
        )
    if account.email and emails_differ(account.email, change.new_email):
        outbox_enqueue(
            template=EmailTemplate.EMAIL_CHANGE_PENDING,
            recipient=account.email,
            language=change.language,
            ticket=ticket,
            account=account,
            context={"email_change_id": change.pk},
        )
    return change


def email_change_by_support(
    *,
    ticket: Ticket,
    account: Account,
    new_email: str,
    actor: Account,
    codes_after: bool = False,
) -> EmailChangeRequest:
    """An agent confirmed a ticket that changes the address: pending like a member's own change.

    `codes_after`: the ticket's codes go to the new address, queued only once it applies. The
    caller holds the ticket's and the account's locks. A pending change of the account is
    replaced (`superseded`).
    """
    now = timezone.now()
    email_changes_cancel(
        account=account, outcome=EmailChangeOutcome.SUPERSEDED, now=now, skip=ticket.reference
    )
    change = EmailChangeRequest.objects.create(
        account=account,
        new_email=new_email,
        confirmed_at=now,
        ticket_reference=ticket.reference,
        codes_after=codes_after,
        language=ticket.language,
    )
    return email_change_schedule(change=change, account=account, now=now, actor=actor)


def email_changes_cancel(
    *, account: Account, outcome: str, now: datetime | None = None, skip: str = ""
) -> list[EmailChangeRequest]:
    """End every change of the account still waiting (for its link or its time), with `outcome`;
    each support-driven one says so in its ticket's history. The caller holds the account lock."""
    moment = now or timezone.now()
    open_changes = list(
        EmailChangeRequest.objects.select_for_update()
        .filter(account=account, used_at=None)
        .order_by("pk")
    )
    for change in open_changes:
        change.used_at = moment
        change.outcome = outcome
        change.save(update_fields=["used_at", "outcome"])
        reference = "" if change.ticket_reference == skip else change.ticket_reference
        ticket = _ticket_locked(reference)
        if ticket is not None and change.confirmed_at is not None:
            event_record(
                ticket=ticket,
                kind=EventKind.OUTCOME,
                reason="email_change_cancelled",
                data={"outcome": outcome},
            )
            if change.codes_after:
                # The recovery's codes were to follow this change: none will be sent. Said in
                # the history; the desk offers the re-issue when it was replaced or cancelled
                # (workflows.services.decisions.codes_reissue_cause).
                event_record(
                    ticket=ticket,
                    kind=EventKind.OUTCOME,
                    reason="codes_not_sent",
                    data={"outcome": outcome},
                )
    return open_changes


@transaction.atomic
def account_email_change_cancel(*, account: Account) -> int:
    """The member cancels, from `/account/`, the change of address waiting on their account."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    return len(email_changes_cancel(account=account, outcome=EmailChangeOutcome.CANCELLED))


def email_change_waiting(*, account: Account) -> EmailChangeRequest | None:
    """The account's confirmed change waiting for its time, if any (shown on `/account/`)."""
    return (
        EmailChangeRequest.objects.filter(account=account, used_at=None, confirmed_at__isnull=False)
        .order_by("-confirmed_at", "-pk")
        .first()
    )


def email_change_apply_locked(
    *, change: EmailChangeRequest, account: Account, now: datetime, actor: Account | None = None
) -> None:
    """Put the new address on file, once; tell both addresses; then (only then) queue the codes
    a support-driven change carries. The caller holds both rows' locks."""
    old_email = account_email_set(account=account, new_email=change.new_email)
    change.used_at = now
    change.outcome = EmailChangeOutcome.APPLIED
    change.save(update_fields=["used_at", "outcome"])
    ticket = _ticket_locked(change.ticket_reference)
    if ticket is not None:
        event_record(
            ticket=ticket,
            kind=EventKind.OUTCOME,
            actor=actor,
            reason="email_changed",
            data={"applied_at": now.isoformat()},
        )
    email_change_notify(
        account=account,
        old_email=old_email,
        new_email=change.new_email,
        language=change.language,
        ticket=ticket,
    )
    if change.codes_after:
        outbox_enqueue(
            template=EmailTemplate.CREDENTIALS,
            recipient=change.new_email,
            language=change.language,
            ticket=ticket,
            account=account,
        )


@transaction.atomic
def email_change_apply(*, change_id: int, now: datetime | None = None) -> bool:
    """Apply one pending change whose time has come: at most once (row locks, then a check of
    the row's state under them). A frozen or closed account keeps its address. True if applied."""
    moment = now or timezone.now()
    account_id = (
        EmailChangeRequest.objects.filter(pk=change_id).values_list("account_id", flat=True).first()
    )
    if account_id is None:
        return False
    # Account first, then the change: the order every other writer of these rows takes
    # ("this was not me", a new request, a closure), so two of them never wait on each other.
    account = Account.objects.select_for_update().get(pk=account_id)
    change = (
        EmailChangeRequest.objects.select_for_update()
        .filter(pk=change_id, used_at=None, confirmed_at__isnull=False, applies_at__lte=moment)
        .first()
    )
    if change is None:
        return False
    if account.status != AccountStatus.ACTIVE or not account.is_active:
        email_changes_cancel(account=account, outcome=EmailChangeOutcome.INACTIVE, now=moment)
        return False
    email_change_apply_locked(change=change, account=account, now=moment)
    return True


def email_changes_apply_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Apply every pending change due by `now` (the beat, every few minutes); each in its own
    short transaction. A second run, or two at once, apply nothing twice. The count applied."""
    moment = now or timezone.now()
    due = list(
        EmailChangeRequest.objects.filter(
            used_at=None, confirmed_at__isnull=False, applies_at__lte=moment
        )
        .order_by("applies_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    return sum(email_change_apply(change_id=change_id, now=moment) for change_id in due)


def email_change_notice_pending(*, change_id: int) -> EmailChangeRequest | None:
    """The change a waiting notice is about, if it still waits (else the notice is not sent)."""
    return (
        EmailChangeRequest.objects.filter(pk=change_id, used_at=None, confirmed_at__isnull=False)
        .select_related("account")
        .first()
    )


def email_change_notify(
    *,
    account: Account,
    old_email: str,
    new_email: str,
    language: str,
    ticket: Ticket | None = None,
) -> None:
    """Tell of an applied e-mail change, whoever made it: the old address (when it really is
    another one) and the new one (docs/security.md §17)."""
    if old_email and emails_differ(old_email, new_email):
        outbox_enqueue(
            template=EmailTemplate.EMAIL_CHANGED_OLD,
            recipient=old_email,
            language=language,
            ticket=ticket,
            account=account,
        )
    outbox_enqueue(
        template=EmailTemplate.EMAIL_CHANGED_NEW,
        recipient=new_email,
        language=language,
        ticket=ticket,
        account=account,
    )


def account_temporary_password_expired(*, account: Account) -> None:
    """Record, on the ticket that issued it, that an expired temporary password was refused."""
    message = (
        OutboxMessage.objects.filter(account=account, template=EmailTemplate.CREDENTIALS)
        .exclude(ticket=None)
        .order_by("-created_at", "-id")
        .first()
    )
    if message is None or message.ticket_id is None:
        return
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=message.ticket_id)
        already = TicketEvent.objects.filter(
            ticket=ticket, kind=EventKind.OUTCOME, reason="temporary_password_expired"
        ).exists()
        if not already:
            event_record(
                ticket=ticket,
                kind=EventKind.OUTCOME,
                reason="temporary_password_expired",
                data={"expired_at": str(account.temporary_password_expires_at)},
            )
