"""Every write to a member's account: creation, password, e-mail address, closure.

Callers hold the transaction (these run inside the workflow that decided them) and tell the
member: the e-mails are composed in `workflows`, which calls these.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account, AccountStatus, Member


def emails_differ(first: str, second: str) -> bool:
    """The one rule for "another address": compared without case, as mail servers do."""
    return first.strip().casefold() != second.strip().casefold()


def account_create_for_member(
    *, member: Member, email: str, secret_question: str, secret_answer_hash: str
) -> Account:
    """Open the account of a confirmed registration: no usable password until codes are sent."""
    account = Account(
        username=member.member_number,
        member=member,
        email=email,
        first_name=member.first_name,
        last_name=member.last_name,
        secret_question=secret_question,
        secret_answer_hash=secret_answer_hash,
        must_change_password=True,
    )
    account.set_unusable_password()
    account.save()
    return account


@sensitive_variables("new_password")
def account_password_set(*, account: Account, new_password: str) -> Account:
    """Set a member-chosen password; any temporary one stops working."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    account.set_password(new_password)
    account.must_change_password = False
    account.temporary_password_expires_at = None
    account.password_changed_at = timezone.now()
    account.save(
        update_fields=[
            "password",
            "must_change_password",
            "temporary_password_expires_at",
            "password_changed_at",
        ]
    )
    return account


def account_temporary_password_withdraw(*, account: Account) -> bool:
    """Make a temporary password nobody received unusable (the caller holds the row lock).

    Only a temporary password is withdrawn (one the member must still change): a password the
    member chose is never touched. True if one was withdrawn.
    """
    if not account.must_change_password or not account.has_usable_password():
        return False
    account.set_unusable_password()
    account.temporary_password_expires_at = None
    account.save(update_fields=["password", "temporary_password_expires_at"])
    return True


def account_email_set(*, account: Account, new_email: str) -> str:
    """Replace the address on file (the caller holds the row lock); return the old address."""
    old_email = account.email
    account.email = new_email
    account.email_changed_at = timezone.now()
    account.save(update_fields=["email", "email_changed_at"])
    return old_email


def account_email_change_requested(*, account: Account, at: datetime.datetime) -> None:
    """Record that a change of the address became pending (the caller holds the row lock)."""
    account.email_change_requested_at = at
    account.save(update_fields=["email_change_requested_at"])


def account_freeze(*, account: Account) -> Account:
    """Freeze the account (the member said "this was not me"): no login, no recovery.

    The password becomes unusable, which also ends every session of the account: Django checks
    each session against a hash of the password on every request (ASVS 5.0 7.4.3).
    """
    account.status = AccountStatus.FROZEN
    account.frozen_at = timezone.now()
    account.set_unusable_password()
    account.must_change_password = False
    account.temporary_password_expires_at = None
    account.save(
        update_fields=[
            "status",
            "frozen_at",
            "password",
            "must_change_password",
            "temporary_password_expires_at",
        ]
    )
    return account


def account_unfreeze(*, account: Account) -> Account:
    """An agent's decision: the account is active again (new codes follow, by the workflow)."""
    account.status = AccountStatus.ACTIVE
    account.frozen_at = None
    account.save(update_fields=["status", "frozen_at"])
    return account


def account_close(*, account: Account) -> Account:
    """Close the account: no login, no recovery; the row and its history stay."""
    account.status = AccountStatus.CLOSED
    account.closed_at = timezone.now()
    account.is_active = False
    account.save(update_fields=["status", "closed_at", "is_active"])
    return account
