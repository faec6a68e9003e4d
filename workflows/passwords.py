"""Temporary passwords e-mailed with new access codes: 10 characters, 9 letters and 1 digit.

The insurer's rule fixes the shape; look-alikes (I, l, O, o, 0, 1) are left out because members
retype the password from the e-mail. Every draw comes from ``secrets``: 48 letters at each of 9
places, 8 digits, 10 positions for the digit, so 48**9 * 8 * 10 = 108,208,436,847,575,040
equally likely passwords, about 56.6 bits of entropy. That is enough for a password that lives
24 hours, allows only choosing a new password and stops working once used, behind per-account
login throttling.
"""

from __future__ import annotations

import secrets
import string

__all__ = ["DIGITS", "LETTERS", "PASSWORD_LENGTH", "generate_temporary_password"]

PASSWORD_LENGTH = 10

_LOOK_ALIKES = frozenset("IlOo")
LETTERS = "".join(char for char in string.ascii_letters if char not in _LOOK_ALIKES)
DIGITS = "23456789"


def generate_temporary_password() -> str:
    """Return a random password: 9 letters from LETTERS, 1 digit from DIGITS at a random place."""
    characters = [secrets.choice(LETTERS) for _ in range(PASSWORD_LENGTH - 1)]
    characters.insert(secrets.randbelow(PASSWORD_LENGTH), secrets.choice(DIGITS))
    return "".join(characters)
