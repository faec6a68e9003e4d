"""Credential issuance: a fresh temporary password, hashed at once, returned only to the sender."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account
from members.services.accounts import account_temporary_password_withdraw, emails_differ
from tickets.models import EventKind, Ticket
from tickets.services import event_record
from workflows.models import EmailTemplate, OutboxMessage
from workflows.passwords import generate_temporary_password


class AccountFrozen(Exception):
    """Codes for a frozen account are never issued (a permanent delivery failure)."""


class AccountClosed(Exception):
    """Codes for a closed account are never issued (a permanent delivery failure): a closure
    confirmed after the codes were queued wins, and a closed account never opens again."""


class RecipientNotOnFile(Exception):
    """Codes go only to the address on file when they are sent, never to one not (or no longer)
    in force, such as the new address of a change still waiting (a permanent delivery failure)."""


@sensitive_variables("password")
def credentials_issue(
    *, account_id: int, ticket_id: int | None, attempt: int, recipient: str
) -> str:
    """Give the account a new temporary password; the caller e-mails it, nothing keeps it.

    Runs in the worker at send time (docs/product.md §7): a retry issues a new password, so the
    latest e-mail always holds the only valid one.
    """
    password = generate_temporary_password()
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        if account.is_frozen:
            # The member said "this was not me" after these codes were queued: never sent.
            raise AccountFrozen(account_id)
        if account.is_closed:
            raise AccountClosed(account_id)
        if emails_differ(account.email, recipient):
            raise RecipientNotOnFile(account_id)
        account.set_password(password)
        account.must_change_password = True
        account.temporary_password_expires_at = timezone.now() + settings.GUICHET_TEMP_PASSWORD_TTL
        account.save(
            update_fields=["password", "must_change_password", "temporary_password_expires_at"]
        )
        if ticket_id is not None:
            ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
            event_record(
                ticket=ticket,
                kind=EventKind.OUTCOME,
                reason="temporary_password_issued",
                data={
                    "attempt": attempt,
                    "expires_at": account.temporary_password_expires_at.isoformat(),
                },
            )
    return password


def credentials_withdraw_undelivered(*, message: OutboxMessage) -> bool:
    """The codes e-mail failed for good: its password reached nobody, so it must not work.

    Called in the transaction that marks the message failed. A newer codes e-mail for the
    account carries the valid password: then nothing is withdrawn. Recorded on the ticket
    (`temporary_password_withdrawn`); an agent re-issues codes from the desk. True if withdrawn.
    """
    if message.template != EmailTemplate.CREDENTIALS or message.account_id is None:
        return False
    newer = OutboxMessage.objects.filter(
        account_id=message.account_id, template=EmailTemplate.CREDENTIALS, pk__gt=message.pk
    ).exists()
    if newer:
        return False
    account = Account.objects.select_for_update().get(pk=message.account_id)
    if not account_temporary_password_withdraw(account=account):
        return False
    if message.ticket_id is not None:
        ticket = Ticket.objects.select_for_update().get(pk=message.ticket_id)
        event_record(
            ticket=ticket,
            kind=EventKind.OUTCOME,
            reason="temporary_password_withdrawn",
            data={"message": message.pk},
        )
    return True
