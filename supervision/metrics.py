"""GET /metrics: Prometheus text, the supervisors' figures plus every process's counters.

Read at scrape time from the database (one registry per scrape, nothing stored per process):
tickets by state, open tickets over their target by kind, the oldest undecided age, outbox
messages by status and the oldest unsent age, codes e-mails already late on the promise. The
process counters (core.metrics) come from PROMETHEUS_MULTIPROC_DIR when it is set (gunicorn with
several workers), else from this process. docs/operations.md, "Metrics".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.worker_metrics import scrape_allowed as scrape_rule
from supervision.selectors import backlog
from tickets.models import OPEN_STATES, Ticket, TicketState
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus


class DatabaseCollector(Collector):
    """Figures the supervisors see, computed from the database at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        by_state = dict.fromkeys(TicketState.values, 0)
        for row in Ticket.objects.values("state").annotate(n=Count("id")).order_by():
            by_state[row["state"]] = row["n"]
        tickets = GaugeMetricFamily("guichet_tickets", "Tickets by state.", labels=["state"])
        for state, count in by_state.items():
            tickets.add_metric([state], count)
        yield tickets

        over = GaugeMetricFamily(
            "guichet_tickets_over_target",
            "Open tickets older than their kind's target (business hours).",
            labels=["kind"],
        )
        for row in backlog(now=now).over_target:
            over.add_metric([row["kind"]], row["count"])
        yield over

        oldest_open = Ticket.objects.filter(state__in=OPEN_STATES).aggregate(m=Min("created_at"))
        yield GaugeMetricFamily(
            "guichet_oldest_undecided_age_seconds",
            "Age of the oldest ticket waiting for a decision (0 when none).",
            value=_age(now, oldest_open["m"]),
        )

        outbox = GaugeMetricFamily(
            "guichet_outbox_messages", "Outbox messages not sent, by status.", labels=["status"]
        )
        unsent = [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED]
        counts = dict.fromkeys(unsent, 0)
        for row in (
            OutboxMessage.objects.filter(status__in=unsent)
            .values("status")
            .annotate(n=Count("id"))
            .order_by()
        ):
            counts[row["status"]] = row["n"]
        for status, count in counts.items():
            outbox.add_metric([status], count)
        yield outbox

        waiting = OutboxMessage.objects.filter(
            status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]
        )
        yield GaugeMetricFamily(
            "guichet_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox message still to send (0 when none).",
            value=_age(now, waiting.aggregate(m=Min("created_at"))["m"]),
        )

        late = waiting.filter(
            template=EmailTemplate.CREDENTIALS,
            ticket__decided_at__lt=now - timedelta(minutes=settings.GUICHET_PROMISE_MINUTES),
        ).count()
        yield GaugeMetricFamily(
            "guichet_codes_over_promise",
            "Codes e-mails still unsent more than GUICHET_PROMISE_MINUTES after the decision.",
            value=late,
        )


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    return max(0.0, (now - then).total_seconds())


def scrape() -> bytes:
    """The whole exposition: process counters (all workers in multiprocess mode) + database."""
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        collector: Any = MultiProcessCollector  # untyped in prometheus-client
        collector(processes)
        return generate_latest(processes) + generate_latest(database)
    return generate_latest(REGISTRY) + generate_latest(database)


def scrape_allowed(request: HttpRequest) -> bool:
    """A bearer token (GUICHET_METRICS_TOKEN) or a peer in GUICHET_METRICS_ALLOWED_NETWORKS."""
    return scrape_rule(
        peer=request.META.get("REMOTE_ADDR", ""),
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        return HttpResponse(status=403)
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
