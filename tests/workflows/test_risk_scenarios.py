"""The takeover signals on the labelled scenario set (benchmarks/risk_scenarios.py prints it)."""

from __future__ import annotations

import pytest

from benchmarks.risk_scenarios import HONEST, REPEAT, SCENARIOS, TAKEOVER, figures, run_all

pytestmark = pytest.mark.django_db


def test_the_set_has_at_least_40_labelled_scenarios_of_each_group() -> None:
    groups = {scenario.group for scenario in SCENARIOS}
    assert len(SCENARIOS) >= 40
    assert groups == {HONEST, REPEAT, TAKEOVER}
    assert all(s.expected in ("none", "some", "high") for s in SCENARIOS)
    assert all(s.expected == "none" for s in SCENARIOS if s.group != TAKEOVER)


def test_every_takeover_is_flagged_and_most_honest_requests_are_not() -> None:
    outcomes = run_all()
    result = figures(outcomes)
    missed = [
        o.scenario.name for o in outcomes if o.scenario.group == TAKEOVER and o.level == "none"
    ]
    assert missed == []
    assert result["flagged"]["recall"] == 1.0
    assert result["flagged"]["precision"] >= 0.8
    assert result["high"]["recall"] >= 0.8 and result["high"]["precision"] >= 0.8
    # A single honest request with nothing odd in it is never high risk.
    assert not [o for o in outcomes if o.scenario.group != TAKEOVER and o.level == "high"]
