"""Business-hours arithmetic over a configurable calendar (opening hours, weekdays, holidays).

All interval bounds are converted to UTC before any subtraction: Python subtracts aware datetimes
that share a tzinfo as naive wall-clock times, which would be an hour off across a DST change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib
from django.conf import settings

UTC = dt.UTC
# Walking further than this finds no opening hours: the calendar has none (all days closed).
MAX_DAYS_SCANNED = 3 * 366


class ClosedDays(Container[dt.date]):
    """A country's public holidays for any year (the `holidays` library) plus extra dates.

    `subdiv` selects regional holidays: for France "57" (Moselle) or "6AE" (Alsace) add Good
    Friday and St Stephen's Day (Alsace-Moselle's local law).
    """

    def __init__(self, country: str, subdiv: str, extra: frozenset[dt.date]) -> None:
        self.key = (country, subdiv, extra)
        self.extra = extra
        self.public: Any = (
            holidays_lib.country_holidays(country, subdiv=subdiv or None) if country else None
        )

    def __contains__(self, day: object) -> bool:
        if day in self.extra:
            return True
        return self.public is not None and isinstance(day, dt.date) and day in self.public

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClosedDays) and other.key == self.key


@lru_cache(maxsize=8)
def closed_days(country: str, subdiv: str, extra: frozenset[dt.date]) -> ClosedDays:
    """One ClosedDays per configuration: the library's per-year tables are computed once."""
    return ClosedDays(country, subdiv, extra)


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekdays open, daily opening and closing times, a time zone and closed dates."""

    tz: ZoneInfo
    weekdays: frozenset[int]
    opens: dt.time
    closes: dt.time
    holidays: Container[dt.date]

    @classmethod
    def from_settings(cls) -> BusinessCalendar:
        """The calendar in `GUICHET_BUSINESS_HOURS`, the country's public holidays
        (`GUICHET_HOLIDAYS_COUNTRY`, `GUICHET_HOLIDAYS_SUBDIV`) and `GUICHET_PUBLIC_HOLIDAYS`."""
        conf = settings.GUICHET_BUSINESS_HOURS
        return cls(
            tz=ZoneInfo(conf["timezone"]),
            weekdays=frozenset(int(d) for d in conf["weekdays"]),
            opens=dt.time.fromisoformat(conf["opens"]),
            closes=dt.time.fromisoformat(conf["closes"]),
            holidays=closed_days(
                settings.GUICHET_HOLIDAYS_COUNTRY,
                settings.GUICHET_HOLIDAYS_SUBDIV,
                frozenset(dt.date.fromisoformat(d) for d in settings.GUICHET_PUBLIC_HOLIDAYS),
            ),
        )

    def is_open_day(self, day: dt.date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def day_interval(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The opening hours of one local date, in UTC, or None when closed."""
        if not self.is_open_day(day) or self.closes <= self.opens:
            return None
        start = dt.datetime.combine(day, self.opens, tzinfo=self.tz).astimezone(UTC)
        end = dt.datetime.combine(day, self.closes, tzinfo=self.tz).astimezone(UTC)
        return start, end

    def _intervals_backwards(
        self, before: dt.datetime
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        day = before.astimezone(self.tz).date()
        for _ in range(MAX_DAYS_SCANNED):
            interval = self.day_interval(day)
            if interval is not None and interval[0] < before:
                yield interval[0], min(interval[1], before)
            day -= dt.timedelta(days=1)

    def business_seconds_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Seconds of opening hours between two instants (0 when end is not after start)."""
        if end <= start:
            return 0.0
        total = 0.0
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            interval = self.day_interval(day)
            if interval is not None:
                lo, hi = max(interval[0], start), min(interval[1], end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += dt.timedelta(days=1)
        return total

    def cutoff(self, *, now: dt.datetime, hours: float) -> dt.datetime | None:
        """The instant before which anything created has waited more than `hours` business hours.

        Waiting time is non-increasing in the creation instant, so "over target" becomes the
        indexable predicate `created_at < cutoff`. When the budget runs out exactly at an opening
        time, the cutoff is the previous closing time: a ticket created while closed has then
        waited exactly the target, which is not over it.
        """
        remaining = dt.timedelta(hours=hours)
        for lo, hi in self._intervals_backwards(now):
            length = hi - lo
            if remaining < length:
                return hi - remaining
            remaining -= length
        return None


def over_target_cutoffs(*, now: dt.datetime) -> dict[str, dt.datetime]:
    """Per kind, the creation instant before which an open ticket is over its target."""
    calendar = BusinessCalendar.from_settings()
    cutoffs = {}
    for kind, hours in settings.GUICHET_TARGET_BUSINESS_HOURS.items():
        cutoff = calendar.cutoff(now=now, hours=hours)
        if cutoff is not None:
            cutoffs[kind] = cutoff
    return cutoffs
