"""The audit view's filter, and file names made from any filter set.

Queues (reassign, export) reuse the desk's `tickets.filters.TicketFilter`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from members.models import Account
from tickets.models import EventKind, TicketEvent, TicketKind


def staff_accounts() -> QuerySet[Account]:
    return Account.objects.filter(is_staff=True, is_active=True).order_by("username")


def _day_start(day: dt.date) -> dt.datetime:
    """Local midnight: date filters become index-friendly ranges, not `::date` casts."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(settings.TIME_ZONE))


class DateRangeMixin:
    """`*_from` / `*_to` dates (inclusive, local days) as a half-open instant range."""

    def date_from(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        field = name.removesuffix("_from")
        return queryset.filter(**{f"{field}__gte": _day_start(value)})

    def date_to(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        field = name.removesuffix("_to")
        return queryset.filter(**{f"{field}__lt": _day_start(value + dt.timedelta(days=1))})


class AuditFilter(DateRangeMixin, django_filters.FilterSet):
    """History events by agent, action, ticket kind and date range."""

    actor = django_filters.ModelChoiceFilter(
        queryset=staff_accounts(), to_field_name="username", label=_("Agent")
    )
    action = django_filters.MultipleChoiceFilter(
        field_name="kind", choices=EventKind.choices, label=_("Action")
    )
    ticket_kind = django_filters.MultipleChoiceFilter(
        field_name="ticket__kind", choices=TicketKind.choices, label=_("Ticket kind")
    )
    created_at_from = django_filters.DateFilter(method="date_from", label=_("From"))
    created_at_to = django_filters.DateFilter(method="date_to", label=_("Until"))

    class Meta:
        model = TicketEvent
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Evaluated per request, so new staff appear without a restart.
        self.filters["actor"].queryset = staff_accounts()


def filters_slug(filterset: django_filters.FilterSet) -> str:
    """The valid filters as a file-name fragment: `state-pending_kind-REG`."""
    if not filterset.is_valid():
        return "all"
    parts = []
    for name, value in filterset.form.cleaned_data.items():
        if value is False or value in (None, "", [], ()):
            continue
        if isinstance(value, list | tuple):
            text = "+".join(str(v) for v in value)
        elif isinstance(value, Account):
            text = value.username
        elif isinstance(value, dt.date):
            text = value.isoformat()
        else:
            text = str(value)
        parts.append(f"{name}-{text}")
    slug = re.sub(r"[^A-Za-z0-9+_.-]", "", "_".join(parts))[:150]
    return slug or "all"


def any_filter(filterset: django_filters.FilterSet) -> bool:
    """True when the request carried at least one valid, non-empty filter."""
    return bool(filterset.is_valid() and filters_slug(filterset) != "all")
