"""Authentication: members with member ID + password at /login/, staff at /desk/login/."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from members.models import Account


class TemporaryPasswordExpired(Exception):
    """The password was right but it is a temporary one past its lifetime.

    Raised only after the password itself was verified, so telling the person is no oracle:
    only whoever holds the e-mailed password ever learns that it expired.
    """

    def __init__(self, account: Account) -> None:
        super().__init__("temporary password expired")
        self.account = account


class PortalBackend(ModelBackend):
    """ModelBackend (one hash for unknown users too, Django #20760) scoped to a portal."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        portal: str | None = None,
        **kwargs: Any,
    ) -> Account | None:
        account = super().authenticate(request, username=username, password=password, **kwargs)
        if account is None:
            return None
        if portal == "desk" and not account.is_staff:
            return None
        if portal == "member" and (account.is_staff or account.member_id is None):
            return None
        if portal == "member" and account.temporary_password_expired():
            raise TemporaryPasswordExpired(account)
        return account

    def user_can_authenticate(self, user: Any) -> bool:
        """A closed or frozen account never logs in, nor keeps a session, even if `is_active`."""
        return (
            super().user_can_authenticate(user)
            and not getattr(user, "is_closed", False)
            and not getattr(user, "is_frozen", False)
        )
