"""The staff second factor (docs/security.md §40): TOTP keys encrypted at rest, backup codes
hashed, codes throttled like passwords, the session's proof and its freshness for step-up.

- Keys: 20 random bytes, shown once as base32 (and a QR code rendered here, no remote service),
  stored as a Fernet token under `GUICHET_OTP_ENCRYPTION_KEY`, or a key derived from SECRET_KEY.
- Codes: 6 digits, 30 s steps, one step of drift either way; a step once accepted is never
  accepted again (replay), even within its drift window.
- Backup codes: ten single-use codes, kept as HMAC-SHA256 under a key derived like the above.
- Wrong codes count in `members.throttling` under their own portal name ("otp"), keyed on the
  account: the same growing delay, lock and per-IP ceiling as passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.oath import TOTP

from members.models import (
    Account,
    BackupCode,
    SecondFactorEvent,
    SecondFactorEventKind,
    StaffTOTPDevice,
)
from members.throttling import (
    client_ip,
    login_blocked,
    login_failure_record,
    login_success_record,
)

auth_log = logging.getLogger("guichet.auth")

PORTAL = "otp"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
KEY_BYTES = 20
BACKUP_CODE_COUNT = 10
BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
# The session remembers when the second factor was last proven (step-up reads it).
VERIFIED_AT_SESSION_KEY = "_guichet_second_factor_at"


def _now() -> float:
    """The second factor's clock (tests move it)."""
    return time.time()


def _derived_key(purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        settings.SECRET_KEY.encode()
    )


def _fernet() -> Fernet:
    configured: str = settings.GUICHET_OTP_ENCRYPTION_KEY
    if configured:
        return Fernet(configured.encode())
    return Fernet(base64.urlsafe_b64encode(_derived_key(b"guichet-otp-device-key")))


def key_encrypt(raw: bytes) -> str:
    return _fernet().encrypt(raw).decode()


def key_decrypt(token: str) -> bytes:
    return _fernet().decrypt(token.encode())


def secret_b32(raw: bytes) -> str:
    """The key as authenticator apps take it (base32, no padding)."""
    return base64.b32encode(raw).decode().rstrip("=")


def secret_from_b32(value: str) -> bytes:
    cleaned = value.strip().replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def _totp(raw: bytes, *, at: float | None = None) -> TOTP:
    totp = TOTP(raw, step=STEP_SECONDS, digits=DIGITS)
    totp.time = _now() if at is None else at
    return totp


def current_code(raw: bytes, *, at: float | None = None) -> str:
    """The code an authenticator shows now for this key (demo tour and tests)."""
    return f"{_totp(raw, at=at).token():0{DIGITS}d}"


def device_verify_token(device: StaffTOTPDevice, token: str) -> bool:
    """A 6-digit code of the current step ±1 not older than the last one accepted."""
    token = token.strip().replace(" ", "")
    if len(token) != DIGITS or not token.isdigit():
        return False
    try:
        raw = key_decrypt(device.encrypted_key)
    except InvalidToken:
        auth_log.error("second factor key unreadable device=%s", device.pk)
        return False
    totp = _totp(raw)
    base = totp.t()
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        step = base + offset
        totp.drift = offset
        if step > device.last_t and hmac.compare_digest(f"{totp.token():0{DIGITS}d}", token):
            updated = StaffTOTPDevice.objects.filter(pk=device.pk, last_t__lt=step).update(
                last_t=step
            )
            device.last_t = step
            return updated == 1  # a concurrent use of the same code loses
    return False


def confirmed_device(account: Account) -> StaffTOTPDevice | None:
    device: StaffTOTPDevice | None = StaffTOTPDevice.objects.filter(
        user=account, confirmed=True
    ).first()
    return device


def second_factor_event(
    *, account: Account, kind: str, actor: Account | None = None, ip: str = ""
) -> SecondFactorEvent:
    """One audit row (and one log line: never a code nor a key)."""
    auth_log.info(
        "second factor %s account=%s actor=%s ip=%s",
        kind,
        account.pk,
        actor.pk if actor is not None else "-",
        ip,
    )
    return SecondFactorEvent.objects.create(account=account, actor=actor, kind=kind, ip=ip[:45])


@dataclass(frozen=True)
class Enrolment:
    device: StaffTOTPDevice
    secret: str  # base32, shown once, never stored in clear
    uri: str

    @property
    def qr_svg(self) -> str:
        """The otpauth URI as an inline SVG (no script, no style: fits the CSP)."""
        return str(segno.make(self.uri, error="m").svg_inline(scale=5, border=2, dark="#000"))


def provisioning_uri(account: Account, secret: str) -> str:
    issuer: str = settings.GUICHET_OTP_ISSUER
    label = quote(f"{issuer}:{account.username}")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "digits": DIGITS, "period": STEP_SECONDS}
    )
    return f"otpauth://totp/{label}?{query}"


@transaction.atomic
def enrolment_start(*, account: Account) -> Enrolment:
    """A new unconfirmed authenticator with a fresh key (any earlier unconfirmed one is gone)."""
    if confirmed_device(account) is not None:
        raise ValueError("this account already has an authenticator")
    StaffTOTPDevice.objects.filter(user=account, confirmed=False).delete()
    raw = secrets.token_bytes(KEY_BYTES)
    device = StaffTOTPDevice.objects.create(
        user=account, name="authenticator", confirmed=False, encrypted_key=key_encrypt(raw)
    )
    secret = secret_b32(raw)
    return Enrolment(device=device, secret=secret, uri=provisioning_uri(account, secret))


def enrolment_resume(*, account: Account, device: StaffTOTPDevice) -> Enrolment:
    """The same pending key again after a mistyped first code (never once it is confirmed)."""
    if device.confirmed:
        raise ValueError("a confirmed key is never shown again")
    secret = secret_b32(key_decrypt(device.encrypted_key))
    return Enrolment(device=device, secret=secret, uri=provisioning_uri(account, secret))


def pending_device(account: Account) -> StaffTOTPDevice | None:
    device: StaffTOTPDevice | None = StaffTOTPDevice.objects.filter(
        user=account, confirmed=False
    ).first()
    return device


def _backup_digest(account: Account, code: str) -> str:
    normalised = code.strip().replace("-", "").replace(" ", "").lower()
    message = f"{account.pk}:{normalised}".encode()
    return hmac.new(_derived_key(b"guichet-backup-codes"), message, hashlib.sha256).hexdigest()


def _new_backup_code() -> str:
    chars = "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


@transaction.atomic
def backup_codes_issue(*, account: Account) -> list[str]:
    """Ten new single-use codes (the old ones stop working); returned once, stored hashed."""
    BackupCode.objects.filter(account=account).delete()
    codes = [_new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(account=account, digest=_backup_digest(account, code)) for code in codes
    )
    return codes


def _backup_code_use(account: Account, token: str) -> bool:
    return (
        BackupCode.objects.filter(
            account=account, digest=_backup_digest(account, token), used_at=None
        ).update(used_at=timezone.now())
        == 1
    )


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    locked: bool = False
    backup_code: bool = False


def second_factor_check(
    *, request: HttpRequest, account: Account, device: StaffTOTPDevice, token: str
) -> CheckResult:
    """Check a code (or a backup code) under the login throttle; record the outcome."""
    ip = client_ip(request)
    username = str(account.pk)
    blocked = login_blocked(portal=PORTAL, username=username, ip=ip)
    token = (token or "").strip()[:32]
    ok = backup = False
    if not blocked:  # while locked nothing is checked, so no code or backup code is used up
        with transaction.atomic():
            if token.replace(" ", "").isdigit():
                ok = device.verify_token(token)
            else:
                ok = backup = device.confirmed and _backup_code_use(account, token)
    if ok:
        login_success_record(portal=PORTAL, username=username)
        kind = SecondFactorEventKind.BACKUP_USED if backup else SecondFactorEventKind.VERIFIED
        second_factor_event(account=account, kind=kind, ip=ip)
        return CheckResult(ok=True, backup_code=backup)
    failures = login_failure_record(portal=PORTAL, username=username, ip=ip)
    second_factor_event(account=account, kind=SecondFactorEventKind.FAILED, ip=ip)
    locked = blocked or failures >= settings.GUICHET_LOGIN_FAILURES_BEFORE_LOCK
    if failures == settings.GUICHET_LOGIN_FAILURES_BEFORE_LOCK:
        second_factor_event(account=account, kind=SecondFactorEventKind.LOCKED, ip=ip)
    return CheckResult(ok=False, locked=locked)


@transaction.atomic
def enrolment_confirm(
    *, request: HttpRequest, account: Account, device: StaffTOTPDevice, token: str
) -> CheckResult:
    """The first code from the new authenticator turns it on."""
    result = second_factor_check(request=request, account=account, device=device, token=token)
    if result.ok and not result.backup_code:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        second_factor_event(
            account=account, kind=SecondFactorEventKind.ENROLLED, ip=client_ip(request)
        )
    return result


def session_verify(request: HttpRequest, device: StaffTOTPDevice) -> None:
    """Mark the session as holding a verified second factor, now (new session key)."""
    request.session.cycle_key()
    otp_login(request, device)
    request.session[VERIFIED_AT_SESSION_KEY] = _now()


def session_step_up(request: HttpRequest) -> None:
    request.session[VERIFIED_AT_SESSION_KEY] = _now()


def step_up_fresh(request: HttpRequest) -> bool:
    """Whether the second factor was proven within the last GUICHET_STEP_UP_SECONDS."""
    verified_at: Any = request.session.get(VERIFIED_AT_SESSION_KEY)
    if not isinstance(verified_at, int | float):
        return False
    limit: int = settings.GUICHET_STEP_UP_SECONDS
    return bool(_now() - verified_at <= limit)


@transaction.atomic
def device_seed(*, account: Account, secret: str) -> StaffTOTPDevice:
    """Give an account a confirmed authenticator with a known key (seed_demo, tests only)."""
    StaffTOTPDevice.objects.filter(user=account).delete()
    return StaffTOTPDevice.objects.create(
        user=account,
        name="authenticator",
        confirmed=True,
        encrypted_key=key_encrypt(secret_from_b32(secret)),
    )


@transaction.atomic
def device_remove(*, account: Account, actor: Account, ip: str = "") -> None:
    """Remove an account's authenticator and backup codes; the next login enrols again."""
    StaffTOTPDevice.objects.filter(user=account).delete()
    BackupCode.objects.filter(account=account).delete()
    second_factor_event(account=account, kind=SecondFactorEventKind.RESET, actor=actor, ip=ip)


def device_key(device: StaffTOTPDevice) -> bytes:
    return key_decrypt(device.encrypted_key)
