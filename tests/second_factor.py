"""Logging staff in past the second factor, for every test, benchmark and script that needs a
desk session (docs/security.md §40).

- `staff_login(client, account)`: a Django test client's session logged in *and* verified (the
  account gets an authenticator with `TEST_TOTP_SECRET` if it has none), fresh for step-up.
- `totp_code(secret)`: the code an authenticator shows now, for flows that type it over HTTP.
"""

from __future__ import annotations

import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from members.management.commands.seed_demo import DEMO_TOTP_SECRET
from members.models import Account, StaffTOTPDevice
from members.second_factor import (
    VERIFIED_AT_SESSION_KEY,
    confirmed_device,
    current_code,
    device_seed,
    secret_from_b32,
)

TEST_TOTP_SECRET = DEMO_TOTP_SECRET


def ensure_device(account: Account, secret: str = TEST_TOTP_SECRET) -> StaffTOTPDevice:
    """The account's confirmed authenticator, made with `secret` if it has none."""
    return confirmed_device(account) or device_seed(account=account, secret=secret)


def totp_code(secret: str = TEST_TOTP_SECRET, *, at: float | None = None) -> str:
    return current_code(secret_from_b32(secret), at=at)


def verify_session(client: Client, account: Account, *, verified_at: float | None = None) -> None:
    """Mark the client's (already logged-in) session as past the second factor."""
    device = ensure_device(account)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_SESSION_KEY] = time.time() if verified_at is None else verified_at
    session.save()


def staff_login(client: Client, account: Account) -> Client:
    """force_login, then the second factor as if a right code had just been typed."""
    client.force_login(account)
    if account.is_staff:
        verify_session(client, account)
    return client


def fresh_code(account: Account, secret: str = TEST_TOTP_SECRET) -> str:
    """A code the server will accept now for `account`: the current step's, or the next one's
    (±1 step of drift is allowed) when the current one was used already; waits if both were."""
    device = ensure_device(account, secret)
    device.refresh_from_db()
    now = time.time()
    step = int(now // 30)
    wanted = max(step, device.last_t + 1)
    if wanted > step + 1:
        time.sleep((wanted - 1) * 30 - now + 0.2)
    return totp_code(secret, at=wanted * 30 + 1)
