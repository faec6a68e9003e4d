"""System checks: the broker must be configured so that Celery cannot lose or loop work; the
authenticator keys' encryption key must be usable."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility, deploy=True)
def broker_is_safe(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Redis as a broker: noeviction, persistence on, visibility timeout above the task limit."""
    errors: list[Error] = []
    if not settings.REDIS_URL:
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
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        config = client.config_get("save")
        aof = client.config_get("appendonly").get("appendonly")
    except Exception as exc:
        return [
            Error(f"Redis at REDIS_URL does not answer: {type(exc).__name__}", id="guichet.E001")
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
def fault_injection_is_off(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The fault-test hook that kills workers must never be enabled in production."""
    if getattr(settings, "GUICHET_ALLOW_FAULT_INJECTION", False) and not settings.DEBUG:
        return [
            Error(
                "GUICHET_ALLOW_FAULT_INJECTION is on: workers can be told to kill themselves.",
                id="guichet.E005",
            )
        ]
    return []


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
                id="guichet.E006",
            )
        ]
    return []
