"""Password rules beyond Django's: not the member ID or a name, and a sane upper bound."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Argon2 accepts any length; bound it so a huge body cannot be used to burn CPU.
MAX_PASSWORD_LENGTH = 256


class MaximumLengthValidator:
    """Refuse passwords longer than MAX_PASSWORD_LENGTH (64 and more are accepted, ASVS 6.2.9)."""

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(
                _("This password is too long (at most %(max)d characters).")
                % {"max": MAX_PASSWORD_LENGTH},
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return _("At most %(max)d characters.") % {"max": MAX_PASSWORD_LENGTH}


class NotIdentifierValidator:
    """Refuse a password that is, or contains, the member ID or the member's names."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None:
            return
        folded = password.casefold()
        candidates = [getattr(user, "username", "")]
        member = getattr(user, "member", None)
        if member is not None:
            candidates += [member.last_name, member.first_name, member.member_number]
        for value in candidates:
            value = (value or "").casefold().strip()
            if len(value) >= 3 and value in folded:
                raise ValidationError(
                    _("Your password must not contain your member ID or your name."),
                    code="password_contains_identifier",
                )

    def get_help_text(self) -> str:
        return _("It must not contain your member ID or your name.")
