"""A supervisor resets a colleague's authenticator: recorded, and the colleague told by e-mail."""

from __future__ import annotations

from django.db import transaction

from members.models import Account
from members.second_factor import device_remove
from workflows.models import EmailTemplate
from workflows.services.outbox import outbox_enqueue


@transaction.atomic
def staff_second_factor_reset(*, account: Account, actor: Account, ip: str, language: str) -> None:
    """Remove `account`'s authenticator and backup codes (audit row), e-mail them after commit."""
    if account.pk == actor.pk:
        raise PermissionError("nobody resets their own authenticator")
    device_remove(account=account, actor=actor, ip=ip)
    if account.email:
        outbox_enqueue(
            template=EmailTemplate.SECOND_FACTOR_RESET,
            recipient=account.email,
            language=language,
            account=account,
            context={"supervisor": actor.username, "username": account.username},
        )
