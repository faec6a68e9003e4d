"""Process metrics (Prometheus): requests, logins, limits, Celery tasks, codes delivery latency.

Counters and histograms only, so they add up across gunicorn workers in multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, docs/operations.md, "Metrics"). Figures read from the database at
scrape time (tickets, queues, outbox) are collected by `supervision.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "guichet_http_requests",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "guichet_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern and method.",
    ["route", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGIN_FAILURES = Counter(
    "guichet_login_failures", "Failed login attempts, by portal (member, desk).", ["portal"]
)
LOGIN_LOCKS = Counter(
    "guichet_login_locks", "Accounts locked after too many failures, by portal.", ["portal"]
)
LIMITS_HIT = Counter(
    "guichet_limits_hit", "Abuse limits exceeded, by scope (form-ip, form-id, …).", ["scope"]
)
TASKS = Counter(
    "guichet_celery_tasks",
    "Celery tasks finished, by task name and outcome (SUCCESS, FAILURE, RETRY, …).",
    ["task", "outcome"],
)
TASK_SECONDS = Histogram(
    "guichet_celery_task_duration_seconds",
    "Time a Celery task ran in the worker, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTBOX_SENDS = Counter(
    "guichet_outbox_sends",
    "Outbox delivery attempts, by outcome (sent, failed, lost, busy, skipped).",
    ["outcome"],
)
SHED = Counter(
    "guichet_shed_requests",
    "Public-form POSTs answered 503 because every hash slot was busy, by URL name.",
    ["url_name"],
)
CODES_DELIVERY_SECONDS = Histogram(
    "guichet_codes_delivery_seconds",
    "From an agent's confirmation to the mail server accepting the codes e-mail (the promise).",
    buckets=(10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200),
)

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _route(request: HttpRequest) -> str:
    """The URL pattern, never the path: bounded labels, no reference or token in a metric."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + str(match.route).lstrip("^").rstrip("$")


class MetricsMiddleware:
    """Count and time every request by route pattern (outermost, so it sees every answer)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)
        return response


_TASK_STARTED: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str = "", **kwargs: Any) -> None:
    _TASK_STARTED[task_id] = time.perf_counter()


@task_postrun.connect
def _task_outcome(
    sender: Any = None, task_id: str = "", state: str | None = None, **kwargs: Any
) -> None:
    name = getattr(sender, "name", "unknown")
    TASKS.labels(name, state or "UNKNOWN").inc()
    started = _TASK_STARTED.pop(task_id, None)
    if started is not None:
        TASK_SECONDS.labels(name).observe(time.perf_counter() - started)
