"""Abuse limits counted in the Django cache (Redis when configured): forms, e-mails, logins.

Why our own limiter rather than django-axes: the login rules need a growing delay *and* a
temporary lock keyed on the typed username (known or not), a per-IP failure ceiling, answers
identical to a wrong password, one hash on every path, and the same trusted-proxy rule as the
public forms. axes 8 can be bent to most of that, but its lockout response, its database
handlers and its own IP resolution would each need overriding; a hundred lines of cache
counters are easier to audit. docs/recovery-and-limits.md lists the figures and why.

Failure policy when the cache is unreachable: public forms fail *open* (a submitted request must
stand, docs/security.md §20, and every request is reviewed by an agent anyway); logins fail *closed*
(no online guessing while the counters are blind). A store that answers reads but refuses writes
(a full `noeviction` Redis) is not "unreachable": existing delays and locks are still enforced from
what can be read, new failures go uncounted and are logged at ERROR, so a full store never locks
every member out (docs/operations.md, "Redis roles": give the limits store an evicting policy).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.http import HttpRequest
from django.utils.connection import ConnectionProxy

from core.metrics import LIMITS_HIT, LOGIN_FAILURES, LOGIN_LOCKS

logger = logging.getLogger("guichet.security")

# The limits store: its own Redis database (GUICHET_LIMITS_URL), so a cache flush or a full broker
# never touches the counters (docs/operations.md, "Redis roles").
cache: BaseCache = ConnectionProxy(caches, "limits")  # type: ignore[assignment]

HOUR = 3600
MINUTE = 60
# Failures after which each new login attempt must wait (seconds doubling from 1), before the lock.
LOGIN_DELAY_AFTER = 3


def _now() -> float:
    """The limiter's clock (tests move it)."""
    return time.time()


class CacheUnavailable(Exception):
    """The counters cannot be read or written."""


def client_ip(request: HttpRequest) -> str:
    """The client address: REMOTE_ADDR, or the entry our own trusted proxies appended.

    With N trusted proxies each appending its peer to X-Forwarded-For, the client is the N-th
    entry from the right; anything further left was written by the client and is ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    hops = settings.GUICHET_TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return remote  # misconfigured proxy chain: never trust a shorter header
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _digest(value: str) -> str:
    """Keys never hold an identifier or an address in clear."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _incr(key: str, timeout: int) -> int:
    """Add one to a counter created with `timeout`; raise CacheUnavailable on cache errors."""
    try:
        if cache.add(key, 1, timeout=timeout):
            return 1
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=timeout)
            return 1
    except Exception as exc:
        raise CacheUnavailable(type(exc).__name__) from exc


def _get(key: str) -> int:
    try:
        return int(cache.get(key) or 0)
    except Exception as exc:
        raise CacheUnavailable(type(exc).__name__) from exc


def _window_key(scope: str, value: str, window: int) -> str:
    bucket = int(_now() // window)
    return f"rl:{scope}:{_digest(value)}:{bucket}"


def rate_exceeded(*, scope: str, value: str, limit: int, window: int = HOUR) -> bool:
    """Count one hit of `value` in a fixed window; True once the hits exceed `limit` (fail open)."""
    try:
        exceeded = _incr(_window_key(scope, value, window), window + 60) > limit
    except CacheUnavailable as exc:
        logger.warning("rate limiter unavailable scope=%s error=%s: letting through", scope, exc)
        return False
    if exceeded:
        LIMITS_HIT.labels(scope).inc()
    return exceeded


def submission_ip_exceeded(request: HttpRequest) -> bool:
    """Every POST to a public form counts against the client IP."""
    return rate_exceeded(
        scope="form-ip",
        value=client_ip(request),
        limit=settings.GUICHET_SUBMISSIONS_PER_IP_PER_HOUR,
    )


def submission_identifier_exceeded(identifier: str) -> bool:
    """Valid submissions count against the typed member ID or NIR, known or not."""
    return rate_exceeded(
        scope="form-id",
        value=identifier.strip().upper(),
        limit=settings.GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR,
    )


def email_budget_take(address: str) -> bool:
    """Take one form-triggered e-mail for `address`; False once its hourly budget is spent."""
    return EmailBudget(address).take()


class EmailBudget:
    """One unit of an address's hourly e-mail budget, given back if what it paid for rolled back.

    A request whose transaction fails sends nothing; its replay (the same form posted again)
    then takes the unit it really uses, so a retried double submit costs one unit, not two.
    """

    def __init__(self, address: str) -> None:
        self.address = address.strip().casefold()
        self._key = ""

    def take(self) -> bool:
        """Count one e-mail to the address; False once the hourly budget is spent (fail open)."""
        key = _window_key("mail-to", self.address, HOUR)
        try:
            count = _incr(key, HOUR + 60)
        except CacheUnavailable as exc:
            logger.warning("rate limiter unavailable scope=mail-to error=%s: letting through", exc)
            return True
        self._key = key
        limit: int = settings.GUICHET_EMAILS_PER_ADDRESS_PER_HOUR
        return count <= limit

    def refund(self) -> None:
        """Give the unit back (in the window it was taken in): its request was rolled back."""
        if not self._key:
            return
        key, self._key = self._key, ""
        try:
            cache.decr(key)
        except Exception as exc:  # expired, or the cache is down: the unit is lost, no harm
            logger.warning("e-mail budget refund failed error=%s", type(exc).__name__)


def status_page_exceeded(request: HttpRequest) -> bool:
    """Status page views per client IP per minute."""
    return rate_exceeded(
        scope="status-ip",
        value=client_ip(request),
        limit=settings.GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE,
        window=MINUTE,
    )


# --- Login -------------------------------------------------------------------------------------


def _account_keys(portal: str, username: str) -> tuple[str, str]:
    digest = _digest(f"{portal}:{username.strip().casefold()}")
    return f"login:n:{digest}", f"login:t:{digest}"


def _ip_key(ip: str) -> str:
    return _window_key("login-ip", ip, HOUR)


def login_delay_seconds(failures: int) -> int:
    """Wait imposed after `failures` consecutive failures: 0, then 1, 2, 4 … s, then the lock."""
    lock_seconds: int = settings.GUICHET_LOGIN_LOCK_SECONDS
    if failures >= settings.GUICHET_LOGIN_FAILURES_BEFORE_LOCK:
        return lock_seconds
    if failures < LOGIN_DELAY_AFTER:
        return 0
    delay: int = 2 ** (failures - LOGIN_DELAY_AFTER)  # int ** int is typed Any (may be a float)
    return min(delay, lock_seconds)


def login_blocked(*, portal: str, username: str, ip: str) -> bool:
    """Whether this attempt must be refused whatever the password (fails closed)."""
    count_key, time_key = _account_keys(portal, username)
    try:
        failures = _get(count_key)
        last = float(cache.get(time_key) or 0)
        ip_failures = _get(_ip_key(ip))
    except CacheUnavailable as exc:
        logger.warning("login limiter unavailable (%s): refusing the attempt", exc)
        return True
    except Exception as exc:
        logger.warning("login limiter unavailable (%s): refusing the attempt", type(exc).__name__)
        return True
    if ip_failures >= settings.GUICHET_LOGIN_FAILURES_PER_IP_PER_HOUR:
        return True
    return failures > 0 and _now() < last + login_delay_seconds(failures)


def login_failure_record(*, portal: str, username: str, ip: str | None = None) -> int:
    """Count one failure for the username (and the IP); the counter lives LOCK seconds."""
    count_key, time_key = _account_keys(portal, username)
    lock = settings.GUICHET_LOGIN_LOCK_SECONDS
    LOGIN_FAILURES.labels(portal).inc()
    try:
        failures = _incr(count_key, lock)
        cache.touch(count_key, lock)  # consecutive failures: forgotten `lock` s after the last
        cache.set(time_key, _now(), timeout=lock)
        if ip is not None:
            _incr(_ip_key(ip), HOUR + 60)
    except Exception as exc:
        logger.error("login limiter cannot write (%s): failure not counted", type(exc).__name__)
        return 0
    if failures == settings.GUICHET_LOGIN_FAILURES_BEFORE_LOCK:
        logger.warning("login locked for %ss key=%s", lock, count_key)
        LOGIN_LOCKS.labels(portal).inc()
    return failures


def login_success_record(*, portal: str, username: str) -> None:
    """A successful login clears the account's failure counter (not the IP's)."""
    try:
        cache.delete_many(list(_account_keys(portal, username)))
    except Exception as exc:
        logger.warning("login limiter unavailable (%s)", type(exc).__name__)
