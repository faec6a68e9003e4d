"""System checks: the broker must be configured so that Celery cannot lose or loop work."""

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
