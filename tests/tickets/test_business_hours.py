"""Business-hours arithmetic: weekends, public holidays and opening hours, hand-checked."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tickets.business_hours import BusinessCalendar

PARIS = ZoneInfo("Europe/Paris")
# Friday 1 May 2026 is a public holiday; Monday to Friday, 09:00-18:00.
CALENDAR = BusinessCalendar(
    tz=PARIS,
    weekdays=frozenset({0, 1, 2, 3, 4}),
    opens=dt.time(9),
    closes=dt.time(18),
    holidays=frozenset({dt.date(2026, 5, 1)}),
)
MONDAY_11 = dt.datetime(2026, 5, 4, 11, 0, tzinfo=PARIS)


def paris(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def hours(start: dt.datetime, end: dt.datetime) -> float:
    return CALENDAR.business_seconds_between(start, end) / 3600


def test_it_skips_a_holiday_and_the_weekend() -> None:
    # Thursday 16:00-18:00 (2 h) + Friday holiday + weekend + Monday 09:00-11:00 (2 h).
    assert hours(paris(2026, 4, 30, 16, 0), MONDAY_11) == 4


def test_it_counts_a_request_made_while_closed_from_the_next_opening() -> None:
    assert hours(paris(2026, 5, 2, 10, 0), paris(2026, 5, 4, 10, 30)) == 1.5
    assert hours(paris(2026, 5, 4, 7, 0), paris(2026, 5, 4, 8, 59)) == 0


def test_it_counts_whole_days_within_one_week() -> None:
    # Monday 09:00 to Wednesday 18:00: three days of nine hours.
    assert hours(paris(2026, 5, 11, 9, 0), paris(2026, 5, 13, 18, 0)) == 27


def test_it_is_not_fooled_by_the_change_to_summer_time() -> None:
    # Clocks go forward on Sunday 29 March 2026: Friday 17:00-18:00 + Monday 09:00-10:00.
    assert hours(paris(2026, 3, 27, 17, 0), paris(2026, 3, 30, 10, 0)) == 2


def test_the_cutoff_is_the_instant_after_which_a_ticket_is_within_target() -> None:
    # 4 business hours back from Monday 11:00: Monday gives 2 h, Friday is a holiday,
    # Thursday gives the other 2 h, so the cutoff is Thursday 16:00.
    assert CALENDAR.cutoff(now=MONDAY_11, hours=4) == paris(2026, 4, 30, 16, 0)


def test_a_budget_ending_at_an_opening_time_cuts_off_at_the_previous_closing() -> None:
    # 2 h is exactly Monday morning: a ticket made during the weekend has waited 2 h, not more.
    assert CALENDAR.cutoff(now=MONDAY_11, hours=2) == paris(2026, 4, 30, 18, 0)


@pytest.mark.parametrize("target", [0.5, 2, 4, 9, 11, 20])
def test_cutoff_agrees_with_the_business_hours_of_every_creation_time(target: float) -> None:
    cutoff = CALENDAR.cutoff(now=MONDAY_11, hours=target)
    assert cutoff is not None
    created = paris(2026, 4, 27, 0, 0)
    while created < MONDAY_11:
        over = hours(created, MONDAY_11) > target
        assert over == (created < cutoff), created
        created += dt.timedelta(minutes=7)


def test_a_calendar_without_open_days_has_no_cutoff() -> None:
    closed = BusinessCalendar(
        tz=PARIS, weekdays=frozenset(), opens=dt.time(9), closes=dt.time(18), holidays=frozenset()
    )
    assert closed.cutoff(now=MONDAY_11, hours=1) is None


def test_the_default_calendar_has_the_french_public_holidays(settings: object) -> None:
    calendar = BusinessCalendar.from_settings()
    assert dt.date(2026, 5, 14) in calendar.holidays  # Ascension 2026
    assert dt.date(2027, 3, 29) in calendar.holidays  # Easter Monday 2027
    assert not calendar.is_open_day(dt.date(2026, 7, 14))
    assert calendar.is_open_day(dt.date(2026, 7, 15))


# --- Public holidays from the `holidays` library: every year, regions as an option ------------


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (dt.date(2028, 4, 17), "Easter Monday 2028"),
        (dt.date(2028, 5, 25), "Ascension 2028"),
        (dt.date(2028, 6, 5), "Whit Monday 2028"),
        (dt.date(2031, 11, 11), "Armistice 2031"),
        (dt.date(2040, 4, 2), "Easter Monday 2040"),
    ],
)
def test_french_holidays_are_known_for_years_no_list_covered(day: dt.date, name: str) -> None:
    calendar = BusinessCalendar.from_settings()
    assert not calendar.is_open_day(day), name


def test_a_working_day_of_2028_stays_open() -> None:
    assert BusinessCalendar.from_settings().is_open_day(dt.date(2028, 4, 18))


def test_alsace_moselle_adds_good_friday_and_st_stephens_day(settings: Any) -> None:
    good_friday, st_stephen = dt.date(2028, 4, 14), dt.date(2028, 12, 26)
    assert BusinessCalendar.from_settings().is_open_day(good_friday)
    assert BusinessCalendar.from_settings().is_open_day(st_stephen)
    for subdiv in ("57", "6AE"):
        settings.GUICHET_HOLIDAYS_SUBDIV = subdiv
        calendar = BusinessCalendar.from_settings()
        assert not calendar.is_open_day(good_friday), subdiv
        assert not calendar.is_open_day(st_stephen), subdiv


def test_extra_closed_dates_add_to_the_holidays(settings: Any) -> None:
    settings.GUICHET_PUBLIC_HOLIDAYS = ["2028-04-18"]
    calendar = BusinessCalendar.from_settings()
    assert not calendar.is_open_day(dt.date(2028, 4, 18))
    assert not calendar.is_open_day(dt.date(2028, 4, 17))


def test_no_country_means_only_the_listed_dates(settings: Any) -> None:
    settings.GUICHET_HOLIDAYS_COUNTRY = ""
    settings.GUICHET_PUBLIC_HOLIDAYS = []
    assert BusinessCalendar.from_settings().is_open_day(dt.date(2028, 4, 17))
