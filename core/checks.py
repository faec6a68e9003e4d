"""System checks: the broker must be configured so that Celery cannot lose or loop work; the
authenticator keys' encryption key must be usable."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.compatibility, deploy=True)
def broker_is_safe(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Redis as a broker: noeviction, persistence on, visibility timeout above the task limit.

    A managed Redis may refuse `CONFIG GET`: the policy then cannot be read, which is a warning
    (the worker starts; the operator verifies noeviction and persistence with the provider,
    docs/operations.md) unless GUICHET_BROKER_CONFIG_CHECK=strict makes it an error.
    """
    from redis.exceptions import ResponseError

    from core.redis_urls import redis_client

    errors: list[CheckMessage] = []
    broker_url = settings.GUICHET_BROKER_REDIS_URL
    if not broker_url:
        return errors
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if visibility <= settings.CELERY_TASK_TIME_LIMIT:
        errors.append(
            Error(
                "CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT.",
                id="guichet.E002",
            )
        )
    try:
        client = redis_client(broker_url, socket_connect_timeout=1, socket_timeout=2)
        client.ping()
    except Exception as exc:
        return [
            Error(f"Redis broker does not answer: {type(exc).__name__}", id="guichet.E001"),
        ]
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        config = client.config_get("save")
        aof = client.config_get("appendonly").get("appendonly")
    except ResponseError:
        message = (
            "The broker refuses CONFIG GET (a managed Redis?): its eviction policy and "
            "persistence cannot be verified."
        )
        hint = (
            "Verify with the provider that maxmemory-policy is noeviction and that AOF or RDB "
            "persistence is on (docs/operations.md, 'Redis roles')."
        )
        if settings.GUICHET_BROKER_CONFIG_CHECK == "strict":
            return [*errors, Error(message, hint=hint, id="guichet.E006")]
        return [*errors, Warning(message, hint=hint, id="guichet.W001")]
    except Exception as exc:
        return [
            Error(f"Redis broker does not answer: {type(exc).__name__}", id="guichet.E001"),
        ]
    if policy != "noeviction":
        errors.append(
            Error(
                f"Redis maxmemory-policy is {policy!r}; a broker needs 'noeviction'.",
                id="guichet.E003",
            )
        )
    if not config.get("save") and aof != "yes":
        errors.append(
            Error(
                "Redis persistence is off (no RDB save points, no AOF): queued e-mails would be "
                "lost on a restart.",
                hint="Enable appendonly or save points.",
                id="guichet.E004",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def fault_injection_is_off(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The fault-test hook that kills workers must never be enabled in production."""
    if getattr(settings, "GUICHET_ALLOW_FAULT_INJECTION", False) and not settings.DEBUG:
        return [
            Error(
                "GUICHET_ALLOW_FAULT_INJECTION is on: workers can be told to kill themselves.",
                id="guichet.E005",
            )
        ]
    return []


# --- Refusals: a production process never runs in a lab's configuration -----------------------

UNSAFE_EMAIL_BACKENDS = {
    "django.core.mail.backends.filebased.EmailBackend": "written to files (var/mail/)",
    "django.core.mail.backends.console.EmailBackend": "printed on the console",
    "django.core.mail.backends.locmem.EmailBackend": "kept in memory and never sent",
    "django.core.mail.backends.dummy.EmailBackend": "thrown away",
}


def _unsafe_configuration() -> list[tuple[str, str, str, str]]:
    """(check id, override setting, message, hint) for each dangerous choice while DEBUG is off."""
    found: list[tuple[str, str, str, str]] = []
    if settings.DEBUG:
        return found
    backend = settings.EMAIL_BACKEND
    if backend in UNSAFE_EMAIL_BACKENDS:
        found.append(
            (
                "guichet.E010",
                "GUICHET_ALLOW_UNSAFE_EMAIL",
                f"E-mails would be {UNSAFE_EMAIL_BACKENDS[backend]}: temporary passwords in "
                "clear at rest, and the outbox marks them sent.",
                "Set EMAIL_URL to your SMTP relay (smtp+tls://user:pass@host:587).",
            )
        )
    if not settings.GUICHET_BROKER_REDIS_URL:
        found.append(
            (
                "guichet.E011",
                "GUICHET_ALLOW_UNSAFE_BROKER",
                "No broker: tasks run inside the web request (SMTP on the request path) and "
                "nothing retries them but the sweep.",
                "Set REDIS_URL (or CELERY_BROKER_URL) and run `celery -A desk worker`.",
            )
        )
    limits = str(settings.CACHES.get("limits", {}).get("BACKEND", ""))
    if not limits.endswith("RedisCache"):
        found.append(
            (
                "guichet.E012",
                "GUICHET_ALLOW_UNSAFE_LIMITS",
                "The abuse-limit counters are per process: every web process (and node) counts "
                "on its own, so each limit is multiplied by their number.",
                "Set REDIS_URL (or GUICHET_LIMITS_URL).",
            )
        )
    return found


@register(Tags.security, deploy=True)
def deployment_is_safe(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E-mail to files or the console, an in-process broker, per-process limits: refused.

    Each refusal has an explicit GUICHET_ALLOW_UNSAFE_* override for a lab; an override in use
    is logged at every process start (unsafe_start_refusals) and reported here as a warning.
    """
    messages: list[CheckMessage] = []
    for check_id, override, message, hint in _unsafe_configuration():
        if getattr(settings, override, False):
            messages.append(
                Warning(f"{message} (allowed by {override})", id=check_id.replace("E", "W", 1))
            )
        else:
            messages.append(Error(message, hint=f"{hint} A lab may set {override}=1.", id=check_id))
    return messages


def unsafe_start_refusals() -> list[str]:
    """The refusals a starting process must obey ("id: message"); each override in use is logged."""
    import logging

    logger = logging.getLogger("guichet.security")
    refused = []
    for check_id, override, message, _hint in _unsafe_configuration():
        if getattr(settings, override, False):
            logger.warning("unsafe configuration allowed by %s: %s %s", override, check_id, message)
        else:
            refused.append(f"{check_id}: {message}")
    return refused


def refuse_unsafe_start(process: str) -> None:
    """Called as the web process starts (desk.wsgi): exit (EX_CONFIG) on any refusal."""
    import logging

    refused = unsafe_start_refusals()
    if refused:
        logging.getLogger("guichet.security").critical(
            "%s refuses to start: %s", process, "; ".join(refused)
        )
        raise SystemExit(78)


@register(Tags.security)
def otp_key_is_usable(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """GUICHET_OTP_ENCRYPTION_KEY, when set, must be a Fernet key (docs/security.md §40)."""
    key: str = getattr(settings, "GUICHET_OTP_ENCRYPTION_KEY", "")
    if not key:
        return []
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except ValueError:
        return [
            Error(
                "GUICHET_OTP_ENCRYPTION_KEY is not a Fernet key (urlsafe base64 of 32 bytes).",
                hint='python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="guichet.E007",
            )
        ]
    return []
