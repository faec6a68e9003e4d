"""Credential issuance: a fresh temporary password, hashed at once, returned only to the sender."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account
from tickets.models import EventKind, Ticket
from tickets.services import event_record
from workflows.passwords import generate_temporary_password


class AccountFrozen(Exception):
    """Codes for a frozen account are never issued (a permanent delivery failure)."""


@sensitive_variables("password")
def credentials_issue(*, account_id: int, ticket_id: int | None, attempt: int) -> str:
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
