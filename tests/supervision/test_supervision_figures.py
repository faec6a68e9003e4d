"""Each supervisor figure on a small data set whose numbers were worked out by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from supervision.models import AgentDayFigures, DayFigures
from supervision.selectors import supervision_figures
from supervision.services import figures_rollup
from tests.supervision.supervision_data import NOW, SETTINGS, Desk, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk() -> Iterator[Desk]:
    with override_settings(**SETTINGS):
        yield build()


@pytest.fixture
def figures(desk: Desk) -> dict[str, Any]:
    with override_settings(**SETTINGS):
        return supervision_figures(now=NOW)


def test_backlog_counts_open_tickets_by_state_and_kind(figures: dict[str, Any]) -> None:
    backlog = figures["backlog"]
    kinds = [kind for kind, _label in backlog.kinds]
    pending, mismatch, awaiting = backlog.rows
    assert dict(zip(kinds, pending["counts"], strict=True)) == {
        "REG": 4, "REC": 0, "EML": 1, "CLO": 0, "ACC": 0,
    }  # fmt: skip
    assert dict(zip(kinds, mismatch["counts"], strict=True))["REC"] == 1
    assert (pending["total"], mismatch["total"], awaiting["total"], backlog.total) == (5, 1, 0, 6)


def test_backlog_buckets_open_tickets_by_age(figures: dict[str, Any]) -> None:
    ages = {bucket["key"]: bucket["count"] for bucket in figures["backlog"].ages}
    # T1 30 min; T2 2 h; T6 6 h; T5 2 days 1 h; T3 and T4 3 days and more.
    assert ages == {"under_1h": 1, "h1_4": 1, "h4_24": 1, "d1_3": 1, "older": 2}


def test_over_target_counts_business_hours_across_the_weekend_and_holiday(
    figures: dict[str, Any],
) -> None:
    over = {row["kind"]: row["count"] for row in figures["backlog"].over_target}
    # T3 (REC, Thursday 15:00): 3 h Thursday + 2 h Monday = 5 h > 4 h. T4 (REG, Thursday
    # 16:30): 1.5 h + 2 h = 3.5 h. T5 (Saturday): 2 h. Friday 1 May is a holiday.
    assert over == {"REG": 0, "REC": 1, "EML": 0, "CLO": 0, "ACC": 0}
    assert figures["backlog"].over_target_total == 1
    assert figures["backlog"].over_target[2]["target_hours"] is None  # EML has no target here


def test_backlog_lists_the_oldest_waiting_and_stale_claims(
    figures: dict[str, Any], desk: Desk
) -> None:
    assert [t.reference for t in figures["backlog"].oldest] == [
        desk.tickets[name].reference for name in ("T3", "T4", "T5", "T6", "T2")
    ]
    assert figures["backlog"].stale_claims == 1  # T3 claimed on Thursday; T1 10 minutes ago


def test_flow_counts_requests_received_and_decided_per_local_day(
    figures: dict[str, Any],
) -> None:
    flow = {row["day"]: (row["received"], row["decided"]) for row in figures["flow"]}
    assert len(flow) == 30
    assert min(flow) == dt.date(2026, 4, 5)
    assert flow[dt.date(2026, 5, 4)] == (6, 3)
    assert flow[dt.date(2026, 5, 2)] == (2, 2)
    assert flow[dt.date(2026, 5, 1)] == (1, 0)
    assert flow[dt.date(2026, 4, 30)] == (2, 0)
    assert flow[dt.date(2026, 4, 24)] == (0, 1)  # the expiry counts as a decision
    assert flow[dt.date(2026, 4, 10)] == (1, 0)
    assert sum(r for r, _d in flow.values()) == 12  # D6 (30 March) is outside the window
    assert sum(d for _r, d in flow.values()) == 6


def test_promise_measures_decision_to_latest_codes_email_per_day(
    figures: dict[str, Any],
) -> None:
    days = {row["day"]: row for row in figures["promise"].days}
    assert list(days) == [dt.date(2026, 5, 4), dt.date(2026, 5, 2)]
    monday = days[dt.date(2026, 5, 4)]
    # D1: 120 s; D2: 1200 s (its latest sent codes e-mail, not the 10:05 one).
    assert (monday["confirmed"], monday["delivered"], monday["within"]) == (2, 2, 1)
    assert monday["median"] == pytest.approx(660)
    assert monday["p95"] == pytest.approx(120 + 0.95 * 1080)
    assert monday["within_share"] == 0.5
    saturday = days[dt.date(2026, 5, 2)]
    # D4: 180 s; D7: no codes e-mail accepted yet.
    assert (saturday["confirmed"], saturday["delivered"], saturday["within"]) == (2, 1, 1)
    assert saturday["median"] == pytest.approx(180)
    assert saturday["within_share"] == 0.5


def test_promise_lists_emails_failed_retrying_or_stuck_with_their_ticket(
    figures: dict[str, Any], desk: Desk
) -> None:
    """Failed, retrying, and pending with zero attempts for more than GUICHET_OUTBOX_STUCK_MINUTES
    (D7's codes e-mail, queued two days ago); T1's acknowledgment queued 8 minutes ago is not."""
    promise = figures["promise"]
    assert promise.troubled_total == 3
    assert [(m.ticket.reference, m.status, m.attempts) for m in promise.troubled] == [
        (desk.tickets["T1"].reference, "pending", 2),
        (desk.tickets["D2"].reference, "failed", 8),
        (desk.tickets["D7"].reference, "pending", 0),
    ]


def test_people_shows_decisions_rejection_share_and_median_handling_per_agent_and_day(
    figures: dict[str, Any],
) -> None:
    rows = [
        (r["day"], r["agent"], r["confirmed"], r["rejected"], r["rejection_share"],
         r["median_handling_seconds"])
        for r in figures["people"].rows
    ]  # fmt: skip
    assert rows == [
        # alice: D1 10 min from claim, D2 1 h from arrival (never claimed), D3 30 min.
        (dt.date(2026, 5, 4), "alice", 2, 1, pytest.approx(1 / 3), pytest.approx(1800)),
        # bob: D4 22 h from arrival, D7 1 h from claim.
        (dt.date(2026, 5, 2), "bob", 2, 0, 0.0, pytest.approx(41400)),
    ]
    claimed = {c["agent"]: c["count"] for c in figures["people"].claimed}
    assert claimed == {"alice": 1, "bob": 1}


def test_rollups_of_closed_days_give_the_same_figures(desk: Desk, figures: dict[str, Any]) -> None:
    with override_settings(**SETTINGS):
        rolled = figures_rollup(now=NOW)
        assert len(rolled) == 29  # every closed day of the window, today stays live
        assert DayFigures.objects.count() == 29
        assert AgentDayFigures.objects.get(day=dt.date(2026, 5, 2)).confirmed == 2
        again = supervision_figures(now=NOW)
        assert figures_rollup(now=NOW, refresh_days=3) == [
            dt.date(2026, 5, 1), dt.date(2026, 5, 2), dt.date(2026, 5, 3),
        ]  # fmt: skip
    assert again["flow"] == figures["flow"]
    assert again["promise"].days == figures["promise"].days
    assert again["people"].rows == figures["people"].rows


def test_the_hourly_task_fills_the_window_then_refreshes_the_last_days(settings: Any) -> None:
    from desk.celery import app
    from supervision.tasks import supervision_rollup

    assert "supervision.tasks.supervision_rollup" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert supervision_rollup.name in app.tasks
    assert supervision_rollup() == 29
    assert supervision_rollup() == settings.GUICHET_ROLLUP_REFRESH_DAYS
