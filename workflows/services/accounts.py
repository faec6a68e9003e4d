"""Changes a member makes to their own account, and the e-mails that tell of account changes.

The writes themselves are `members.services.accounts`; this module composes them with the outbox.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account, EmailChangeRequest
from members.services.accounts import account_email_set, account_password_set, emails_differ
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
    now = timezone.now()
    EmailChangeRequest.objects.filter(account=account, used_at=None).update(
        used_at=now, outcome="superseded"
    )
    change = EmailChangeRequest.objects.create(account=account, new_email=new_email)
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
            .filter(pk=change_id, used_at=None)
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
        .filter(token_hash=_token_hash(token), used_at=None)
        .first()
    )
    if change is None or change.expires_at is None or change.expires_at <= timezone.now():
        return None
    if change.account.is_closed or not change.account.is_active:
        return None
    return change


@sensitive_variables("token")
@transaction.atomic
def account_email_change_confirm(*, token: str, language: str) -> Account | None:
    """Follow a confirmation link: apply the new address once, tell the old and the new one."""
    change = email_change_pending(token=token)
    if change is None:
        return None
    # Single use even under a double submit: only one conditional update wins.
    won = EmailChangeRequest.objects.filter(pk=change.pk, used_at=None).update(
        used_at=timezone.now(), outcome="applied"
    )
    if not won:
        return None
    account = Account.objects.select_for_update().get(pk=change.account_id)
    old_email = account_email_set(account=account, new_email=change.new_email)
    email_change_notify(
        account=account, old_email=old_email, new_email=change.new_email, language=language
    )
    return account


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
