"""Supervisors' figures: aggregate queries only, each served by an index (see the migration).

No query here loads tickets into Python. The page's cost depends on the open backlog and the
30-day window, not on the number of tickets ever received: every query is a range scan of a
(partial, covering) index. Percentiles use PostgreSQL's `percentile_cont`; on SQLite (`make run`)
they are computed in Python from the window's values, one number per ticket decided in the window.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils.translation import gettext_lazy as _

from members.models import Account, SecondFactorEvent, StaffTOTPDevice
from supervision.models import AgentDayFigures, DayFigures
from tickets.business_hours import over_target_cutoffs
from tickets.models import OPEN_STATES, RiskLevel, Ticket, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler
    from django_stubs_ext import StrPromise, WithAnnotations

WINDOW_DAYS = 30
# People: per agent and day over the last week (20 agents x 7 days stays a readable table).
PEOPLE_DAYS = 7
# Failed or retrying e-mails listed (all are counted).
TROUBLED_SHOWN = 20

# (key, label, lower bound of the age) — the bucket holds tickets at least this old.
AGE_BUCKETS: tuple[tuple[str, Any, dt.timedelta], ...] = (
    ("under_1h", _("Under 1 hour"), dt.timedelta(0)),
    ("h1_4", _("1 to 4 hours"), dt.timedelta(hours=1)),
    ("h4_24", _("4 to 24 hours"), dt.timedelta(hours=4)),
    ("d1_3", _("1 to 3 days"), dt.timedelta(days=1)),
    ("older", _("Older than 3 days"), dt.timedelta(days=3)),
)


def uses_postgresql() -> bool:
    return connection.vendor == "postgresql"


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's `percentile_cont` (linear interpolation) for the SQLite fallback."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def window_start(*, now: dt.datetime, days: int = WINDOW_DAYS) -> dt.datetime:
    """Local midnight `days - 1` days before today: the window holds `days` whole local days."""
    local_tz = _local_tz()
    today = now.astimezone(local_tz).date()
    first = today - dt.timedelta(days=days - 1)
    return dt.datetime.combine(first, dt.time(0), tzinfo=local_tz)


def _local_tz() -> dt.tzinfo:
    """Days are the desk's local days (`TIME_ZONE`)."""
    return ZoneInfo(settings.TIME_ZONE)


def window_days(*, now: dt.datetime, days: int = WINDOW_DAYS) -> list[dt.date]:
    first = window_start(now=now, days=days).date()
    return [first + dt.timedelta(days=i) for i in range(days)]


# --- Backlog ---------------------------------------------------------------------------------


@dataclass
class Backlog:
    """Open tickets: by state and kind, by age, over target, the oldest, stale claims."""

    kinds: list[tuple[str, StrPromise]]  # TicketKind.choices: lazy labels
    rows: list[dict[str, Any]]  # one per open state: label, counts per kind (list), total
    total: int
    ages: list[dict[str, Any]]  # label, count
    over_target: list[dict[str, Any]]  # kind, label, target_hours, count
    over_target_total: int
    stale_claims: int
    oldest: list[Ticket] = field(default_factory=list)
    # Four-eyes: risky confirmations waiting for a second person, and since when the oldest.
    awaiting_approval: int = 0
    approval_waiting_since: dt.datetime | None = None
    # Open tickets by takeover-signal level (workflows/risk.py): key, label, count.
    risks: list[dict[str, Any]] = field(default_factory=list)


def backlog(*, now: dt.datetime) -> Backlog:
    """Two queries on the partial covering index of open tickets (`ticket_open_cover_idx`)."""
    cutoffs = over_target_cutoffs(now=now)
    stale_before = now - dt.timedelta(hours=settings.GUICHET_STALE_CLAIM_HOURS)
    bucket_filters = {}
    for i, (key, _label, lower) in enumerate(AGE_BUCKETS):
        q = Q(created_at__lte=now - lower)
        if i + 1 < len(AGE_BUCKETS):
            q &= Q(created_at__gt=now - AGE_BUCKETS[i + 1][2])
        bucket_filters[key] = Count("id", filter=q)
    over_q = Q(pk__in=[])
    for kind, cutoff in cutoffs.items():
        over_q |= Q(kind=kind, created_at__lt=cutoff)
    grouped = (
        Ticket.objects.filter(state__in=OPEN_STATES)
        .values("state", "kind")
        .annotate(
            n=Count("id"),
            over=Count("id", filter=over_q),
            stale=Count("id", filter=Q(assignee__isnull=False, claimed_at__lt=stale_before)),
            approval_since=Min("approval_requested_at"),
            risk_some=Count("id", filter=Q(risk_level=RiskLevel.SOME)),
            risk_high=Count("id", filter=Q(risk_level=RiskLevel.HIGH)),
            **bucket_filters,
        )
        .order_by()
    )
    kinds = list(TicketKind.choices)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    ages = dict.fromkeys(bucket_filters, 0)
    over: dict[str, int] = defaultdict(int)
    stale = 0
    approval_since: list[dt.datetime] = []
    risks = {RiskLevel.SOME: 0, RiskLevel.HIGH: 0}
    for row in grouped:
        counts[row["state"], row["kind"]] += row["n"]
        risks[RiskLevel.SOME] += row["risk_some"]
        risks[RiskLevel.HIGH] += row["risk_high"]
        if row["state"] == TicketState.AWAITING_APPROVAL and row["approval_since"] is not None:
            approval_since.append(row["approval_since"])
        over[row["kind"]] += row["over"]
        stale += row["stale"]
        for key in ages:
            ages[key] += row[key]
    rows: list[dict[str, Any]] = []
    for state in OPEN_STATES:
        per_kind = [counts[state, kind] for kind, _label in kinds]
        rows.append(
            {
                "state": state,
                "label": TicketState(state).label,
                "counts": per_kind,
                "total": sum(per_kind),
            }
        )
    targets = settings.GUICHET_TARGET_BUSINESS_HOURS
    over_rows = [
        {"kind": kind, "label": label, "target_hours": targets.get(kind), "count": over[kind]}
        for kind, label in kinds
    ]
    oldest = list(
        Ticket.objects.filter(state__in=OPEN_STATES)
        .select_related("assignee")
        .only("reference", "kind", "state", "created_at", "assignee__username")
        .order_by("created_at", "id")[:5]
    )
    return Backlog(
        kinds=kinds,
        rows=rows,
        total=sum(r["total"] for r in rows),
        ages=[{"key": k, "label": label, "count": ages[k]} for k, label, _ in AGE_BUCKETS],
        over_target=over_rows,
        over_target_total=sum(over.values()),
        stale_claims=stale,
        oldest=oldest,
        awaiting_approval=sum(counts[TicketState.AWAITING_APPROVAL, kind] for kind, _l in kinds),
        approval_waiting_since=min(approval_since, default=None),
        risks=[
            {"key": level, "label": RiskLevel(level).label, "count": n}
            for level, n in risks.items()
        ],
    )


# --- Day ranges: live computation (today, and closed days without a rollup) ------------------


def day_start(day: dt.date) -> dt.datetime:
    """Local midnight opening `day`."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=_local_tz())


def flow_live(*, start: dt.datetime, end: dt.datetime) -> dict[dt.date, dict[str, int]]:
    """Received and decided per local day in [start, end).

    Index-only range scans: `ticket_created_idx` and `ticket_decided_cover_idx`.
    """
    tz = _local_tz()
    result: dict[dt.date, dict[str, int]] = defaultdict(lambda: {"received": 0, "decided": 0})
    for key, field_name in (("received", "created_at"), ("decided", "decided_at")):
        rows = (
            Ticket.objects.filter(**{f"{field_name}__gte": start, f"{field_name}__lt": end})
            .annotate(day=TruncDate(field_name, tzinfo=tz))
            .values("day")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("day", "n")
        )
        for day, n in rows:
            result[day][key] = n
    return dict(result)


def people_live(*, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Agents' decisions in [start, end) by local day and agent (`ticket_decided_cover_idx`).

    Handling time = decision minus claim (or minus arrival when decided without a claim).
    Decisions without an agent (expiry) count in the flow, not in anybody's figures.
    """
    decided = Ticket.objects.filter(
        decided_at__gte=start, decided_at__lt=end, decided_by__isnull=False
    ).annotate(day=TruncDate("decided_at", tzinfo=_local_tz()))
    aggregates: dict[str, Any] = {
        "confirmed": Count("id", filter=Q(state=TicketState.CONFIRMED)),
        "rejected": Count("id", filter=Q(state=TicketState.REJECTED)),
    }
    if uses_postgresql():
        aggregates["median"] = PercentileCont(HandlingSeconds(), 0.5)
    grouped = list(
        decided.values("day", "decided_by_id", "decided_by__username")
        .annotate(**aggregates)
        .order_by("day", "decided_by__username")
    )
    if not uses_postgresql():
        _median_fallback(decided, grouped)
    return [
        {
            "day": row["day"],
            "agent_id": row["decided_by_id"],
            "agent": row["decided_by__username"],
            "confirmed": row["confirmed"],
            "rejected": row["rejected"],
            "median_handling_seconds": row["median"],
        }
        for row in grouped
    ]


class _Day(TypedDict):
    day: dt.date


def _median_fallback(
    decided: QuerySet[WithAnnotations[Ticket, _Day]], grouped: list[dict[str, Any]]
) -> None:
    """SQLite only: one pass over the range's decisions (three values a ticket)."""
    values: dict[tuple[dt.date, int | None], list[float]] = defaultdict(list)
    for day, agent, decided_at, claimed_at, created_at in decided.values_list(
        "day", "decided_by_id", "decided_at", "claimed_at", "created_at"
    ).iterator():
        if decided_at is None:  # never: the caller filters on decided_at
            continue
        values[day, agent].append((decided_at - (claimed_at or created_at)).total_seconds())
    for row in grouped:
        row["median"] = percentile_cont(values[row["day"], row["decided_by_id"]], 0.5)


PROMISE_SQL = """
WITH sent AS (
    SELECT o.ticket_id, MAX(o.sent_at) AS sent_at
    FROM workflows_outboxmessage o
    WHERE o.template = %(template)s AND o.status = %(sent)s
      AND o.sent_at >= %(start)s AND o.ticket_id IS NOT NULL
    GROUP BY o.ticket_id
), delays AS (
    SELECT (t.decided_at AT TIME ZONE %(tz)s)::date AS day,
           EXTRACT(EPOCH FROM (s.sent_at - t.decided_at)) AS delay
    FROM tickets_ticket t
    LEFT JOIN sent s ON s.ticket_id = t.id
    WHERE t.state = %(confirmed)s AND t.decided_at >= %(start)s AND t.decided_at < %(end)s
)
SELECT day,
       COUNT(*) AS confirmed,
       COUNT(delay) AS delivered,
       COUNT(*) FILTER (WHERE delay <= %(limit)s) AS within,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY delay) AS median,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY delay) AS p95
FROM delays GROUP BY day ORDER BY day
"""
PROMISE_FIELDS = ("confirmed", "delivered", "within", "median", "p95")


def promise_live(*, start: dt.datetime, end: dt.datetime) -> dict[dt.date, dict[str, Any]]:
    """Per decision day in [start, end): confirmed, e-mailed, within the promise, median, p95.

    `outbox_credentials_sent_idx` (sent codes e-mails by time, covering the ticket id) is
    hash-joined to `ticket_decided_cover_idx`; only a ticket's latest sent codes e-mail counts.
    """
    limit = settings.GUICHET_PROMISE_MINUTES * 60
    if not uses_postgresql():
        return _promise_fallback(start=start, end=end, limit=limit)
    with connection.cursor() as cursor:
        cursor.execute(
            PROMISE_SQL,
            {
                "template": EmailTemplate.CREDENTIALS,
                "sent": OutboxStatus.SENT,
                "confirmed": TicketState.CONFIRMED,
                "start": start,
                "end": end,
                "tz": settings.TIME_ZONE,
                "limit": limit,
            },
        )
        return {row[0]: dict(zip(PROMISE_FIELDS, row[1:], strict=True)) for row in cursor}


def _promise_fallback(
    *, start: dt.datetime, end: dt.datetime, limit: int
) -> dict[dt.date, dict[str, Any]]:
    """SQLite only: the same figures computed in Python over the range's confirmed tickets."""
    latest: dict[int, dt.datetime] = {}
    for ticket_id, sent_at in OutboxMessage.objects.filter(
        template=EmailTemplate.CREDENTIALS,
        status=OutboxStatus.SENT,
        sent_at__gte=start,
        ticket__isnull=False,
    ).values_list("ticket_id", "sent_at"):
        if sent_at is None:  # never: sent_at__gte leaves out the NULLs
            continue
        if ticket_id not in latest or sent_at > latest[ticket_id]:
            latest[ticket_id] = sent_at
    delays: dict[dt.date, list[float | None]] = defaultdict(list)
    for ticket_id, decided_at in Ticket.objects.filter(
        state=TicketState.CONFIRMED, decided_at__gte=start, decided_at__lt=end
    ).values_list("id", "decided_at"):
        sent_at = latest.get(ticket_id)
        day = decided_at.astimezone(_local_tz()).date()
        delays[day].append((sent_at - decided_at).total_seconds() if sent_at else None)
    result = {}
    for day, values in delays.items():
        known = [v for v in values if v is not None]
        result[day] = {
            "confirmed": len(values),
            "delivered": len(known),
            "within": sum(1 for v in known if v <= limit),
            "median": percentile_cont(known, 0.5),
            "p95": percentile_cont(known, 0.95),
        }
    return result


# --- The page: rollups for closed days, live for today and for days not rolled up yet -------


@dataclass
class People:
    """Decisions per agent and day, and tickets currently claimed per agent."""

    days: int
    rows: list[dict[str, Any]]
    claimed: list[dict[str, Any]]


@dataclass
class Promise:
    """Decision → codes e-mail accepted by the mail server, per day; e-mails in trouble."""

    days: list[dict[str, Any]]
    minutes: int
    troubled: list[OutboxMessage]
    troubled_total: int


def _day_figures(*, now: dt.datetime) -> tuple[dict[dt.date, dict[str, Any]], list[dict[str, Any]]]:
    """Flow + promise per day and people rows over the window, from rollups where present."""
    days = window_days(now=now)
    today = days[-1]
    people_from = days[-PEOPLE_DAYS]
    per_day: dict[dt.date, dict[str, Any]] = {}
    for row in DayFigures.objects.filter(day__gte=days[0], day__lt=today).values():
        per_day[row["day"]] = {**row, "median": row["median_delay"], "p95": row["p95_delay"]}
    people_rows = [
        {
            "day": row["day"],
            "agent_id": row["agent_id"],
            "agent": row["agent__username"],
            "confirmed": row["confirmed"],
            "rejected": row["rejected"],
            "median_handling_seconds": row["median_handling"],
        }
        for row in AgentDayFigures.objects.filter(day__gte=people_from, day__lt=today).values(
            "day", "agent_id", "agent__username", "confirmed", "rejected", "median_handling"
        )
        if row["day"] in per_day  # an agent row counts only with its day's rollup
    ]
    missing = [day for day in days[:-1] if day not in per_day]
    # One live range from the first closed day without a rollup through today (usually: today).
    live_from = missing[0] if missing else today
    start, end = day_start(live_from), now
    flows = flow_live(start=start, end=end)
    promises = promise_live(start=start, end=end)
    for day in days:
        if day >= live_from and (day == today or day in missing):
            per_day[day] = {
                **{"received": 0, "decided": 0}, **flows.get(day, {}),
                **dict.fromkeys(PROMISE_FIELDS[:3], 0), "median": None, "p95": None,
                **promises.get(day, {}),
            }  # fmt: skip
    live_people_from = max(live_from, people_from)
    people_rows += [
        row
        for row in people_live(start=day_start(live_people_from), end=end)
        if row["day"] == today or row["day"] in missing
    ]
    return per_day, people_rows


def supervision_figures(*, now: dt.datetime) -> dict[str, Any]:
    """Everything the supervisor page shows, from a fixed number of queries."""
    per_day, people_rows = _day_figures(now=now)
    days = window_days(now=now)
    flow = [
        {"day": day, "received": per_day[day]["received"], "decided": per_day[day]["decided"]}
        for day in days
    ]
    promise_days = []
    for day in reversed(days):
        figures = per_day[day]
        if not figures["confirmed"]:
            continue
        promise_days.append(
            {
                "day": day,
                **{key: figures[key] for key in PROMISE_FIELDS},
                "within_share": figures["within"] / figures["confirmed"],
            }
        )
    for row in people_rows:
        total = row["confirmed"] + row["rejected"]
        row["rejection_share"] = row["rejected"] / total if total else None
    # Latest day first, agents alphabetical within a day (two stable sorts).
    people_rows.sort(key=lambda r: r["agent"])
    people_rows.sort(key=lambda r: r["day"], reverse=True)
    claimed = (
        Ticket.objects.filter(state__in=OPEN_STATES, assignee__isnull=False)
        .values("assignee_id", "assignee__username")
        .annotate(n=Count("id"))
        .order_by("assignee__username")
    )
    stuck_before = now - dt.timedelta(minutes=settings.GUICHET_OUTBOX_STUCK_MINUTES)
    # Failed, retrying, or stuck: pending with no attempt long after it was queued.
    troubled = OutboxMessage.objects.filter(
        Q(status=OutboxStatus.FAILED)
        | Q(status=OutboxStatus.PENDING, attempts__gt=0)
        | Q(status=OutboxStatus.PENDING, attempts=0, created_at__lt=stuck_before)
    )
    return {
        "backlog": backlog(now=now),
        "flow": flow,
        "people": People(
            days=PEOPLE_DAYS,
            rows=people_rows,
            claimed=[
                {"agent": r["assignee__username"], "agent_id": r["assignee_id"], "count": r["n"]}
                for r in claimed
            ],
        ),
        "promise": Promise(
            days=promise_days,
            minutes=settings.GUICHET_PROMISE_MINUTES,
            # outbox_troubled_idx: failed or pending e-mails, latest first.
            troubled=list(
                troubled.select_related("ticket")
                .only(
                    "template",
                    "status",
                    "attempts",
                    "last_error",
                    "created_at",
                    "ticket__reference",
                    "ticket__state",
                )
                .order_by("-created_at", "-id")[:TROUBLED_SHOWN]
            ),
            troubled_total=troubled.count(),
        ),
    }


# --- Aggregates for PostgreSQL ---------------------------------------------------------------


class HandlingSeconds(Func):
    """Seconds from claim (or arrival) to decision, as a float (PostgreSQL)."""

    output_field = FloatField()

    def __init__(self) -> None:
        super().__init__(F("decided_at"), F("claimed_at"), F("created_at"))

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, list[str | int]]:
        decided, claimed, created = (compiler.compile(e) for e in self.get_source_expressions())
        sql = f"EXTRACT(EPOCH FROM ({decided[0]} - COALESCE({claimed[0]}, {created[0]})))"
        return sql, [*decided[1], *claimed[1], *created[1]]


class PercentileCont(Aggregate):
    """`percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)` (PostgreSQL)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be within [0, 1]")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def staff_second_factor_rows() -> list[dict[str, Any]]:
    """Each active staff account and whether it has an authenticator."""
    accounts = (
        Account.objects.filter(is_staff=True, is_active=True)
        .order_by("username")
        .only("pk", "username", "email")
    )
    confirmed = set(
        StaffTOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True)
    )
    return [{"account": account, "enrolled": account.pk in confirmed} for account in accounts]


def second_factor_events(*, limit: int = 100) -> QuerySet[SecondFactorEvent]:
    """The latest second-factor audit rows (enrolments, failures, resets, step-ups)."""
    return SecondFactorEvent.objects.select_related("account", "actor").order_by(
        "-created_at", "-id"
    )[:limit]
