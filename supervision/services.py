"""Supervisors' bulk actions: each ticket goes through the one-ticket service (history, locks)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from members.models import Account
from supervision.models import AgentDayFigures, DayFigures
from supervision.selectors import (
    day_start,
    flow_live,
    people_live,
    promise_live,
    window_days,
)
from tickets.models import OPEN_STATES, Ticket
from tickets.services import TicketActionError, ticket_reassign, ticket_release

# One request never touches more than this many tickets: a bulk action stays a short request.
BULK_LIMIT = 500


@dataclass
class BulkOutcome:
    """References done and refused (with the refusal code)."""

    done: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def tickets_reassign(
    *, references: list[str], actor: Account, assignee: Account, request_id: str = ""
) -> BulkOutcome:
    """Reassign each ticket in its own transaction, so one refusal does not undo the others."""
    outcome = BulkOutcome()
    for reference in references[:BULK_LIMIT]:
        try:
            ticket_reassign(
                reference=reference, actor=actor, assignee=assignee, request_id=request_id
            )
        except (TicketActionError, Ticket.DoesNotExist) as exc:
            outcome.refused[reference] = getattr(exc, "code", "not_found")
        else:
            outcome.done.append(reference)
    return outcome


def stale_claims(*, now: dt.datetime | None = None) -> QuerySet[Ticket]:
    """Open tickets claimed longer ago than `GUICHET_STALE_CLAIM_HOURS`."""
    now = now or timezone.now()
    before = now - dt.timedelta(hours=settings.GUICHET_STALE_CLAIM_HOURS)
    tickets: QuerySet[Ticket] = Ticket.objects.filter(
        state__in=OPEN_STATES, assignee__isnull=False, claimed_at__lt=before
    )
    return tickets


def claims_release_stale(*, actor: Account, request_id: str = "") -> BulkOutcome:
    """Release stale claims (oldest first, at most BULK_LIMIT) through `ticket_release`."""
    if not actor.has_perm("tickets.take_over_ticket"):
        raise TicketActionError("forbidden")
    outcome = BulkOutcome()
    references = list(
        stale_claims().order_by("claimed_at", "id").values_list("reference", flat=True)[:BULK_LIMIT]
    )
    for reference in references:
        try:
            ticket_release(reference=reference, actor=actor, request_id=request_id)
        except TicketActionError as exc:
            outcome.refused[reference] = exc.code
        else:
            outcome.done.append(reference)
    return outcome


@transaction.atomic
def figures_rollup(
    *, now: dt.datetime | None = None, refresh_days: int | None = None
) -> list[dt.date]:
    """Store the figures of closed days in the window: missing ones and the last few.

    Idempotent: a day's rows are replaced by a fresh computation from the same live queries
    the page uses for today, so a rollup never disagrees with what the page would compute.
    """
    now = now or timezone.now()
    refresh = settings.GUICHET_ROLLUP_REFRESH_DAYS if refresh_days is None else refresh_days
    closed = window_days(now=now)[:-1]
    present = set(DayFigures.objects.filter(day__gte=closed[0]).values_list("day", flat=True))
    targets = sorted({*(d for d in closed if d not in present), *closed[len(closed) - refresh :]})
    if not targets:
        return []
    start, end = day_start(targets[0]), day_start(closed[-1] + dt.timedelta(days=1))
    flows = flow_live(start=start, end=end)
    promises = promise_live(start=start, end=end)
    agents = [row for row in people_live(start=start, end=end) if row["day"] in targets]
    AgentDayFigures.objects.filter(day__in=targets).delete()
    for day in targets:
        flow = flows.get(day, {})
        promise = promises.get(day, {})
        DayFigures.objects.update_or_create(
            day=day,
            defaults={
                "received": flow.get("received", 0),
                "decided": flow.get("decided", 0),
                "confirmed": promise.get("confirmed", 0),
                "delivered": promise.get("delivered", 0),
                "within": promise.get("within", 0),
                "median_delay": promise.get("median"),
                "p95_delay": promise.get("p95"),
                "computed_at": now,
            },
        )
    AgentDayFigures.objects.bulk_create(
        AgentDayFigures(
            day=row["day"],
            agent_id=row["agent_id"],
            confirmed=row["confirmed"],
            rejected=row["rejected"],
            median_handling=row["median_handling_seconds"],
            computed_at=now,
        )
        for row in agents
    )
    return targets
