"""How an outbox message reaches the workers, bound at start-up so services never import tasks.

`workflows.apps.WorkflowsConfig.ready()` binds the Celery task's `delay`; in eager mode
(`make run`, no REDIS_URL) the same call runs the delivery in-process after commit.
"""

from __future__ import annotations

from collections.abc import Callable

_publishers: dict[str, Callable[[int], object]] = {}


def publisher_bind(*, name: str, publish: Callable[[int], object]) -> None:
    """Register the callable that hands work item `name` (an id) to the workers."""
    _publishers[name] = publish


def publish(*, name: str, item_id: int) -> None:
    """Hand one item to the workers; raises whatever the broker raises (callers decide)."""
    try:
        publisher = _publishers[name]
    except KeyError:
        raise RuntimeError(f"no publisher bound for {name!r}: is the app ready?") from None
    publisher(item_id)
