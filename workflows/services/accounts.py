"""Changes a member makes to their own account."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account
from workflows.models import EmailTemplate
from workflows.services.outbox import outbox_enqueue


@sensitive_variables("new_password")
@transaction.atomic
def account_password_change(*, account: Account, new_password: str, language: str) -> Account:
    """Set a member-chosen password; any temporary one stops working; the member is told."""
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
    if account.email:
        outbox_enqueue(
            template=EmailTemplate.PASSWORD_CHANGED,
            recipient=account.email,
            language=language,
            account=account,
        )
    return account
