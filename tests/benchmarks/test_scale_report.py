"""The scale benchmark's pure parts (benchmarks/scale.py): statistics, checks and report.

The run itself (processes, locust) takes minutes and is not a test; what decides its verdict is
here: which answers count as unexpected 5xx, when a submission is missing, when a decision was
not e-mailed exactly once, and that any failed check makes the run fail. The users' TOTP codes
and form tokens (benchmarks/scale_browser.py) are checked against the application's own.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks.scale import (
    DecisionRow,
    Phase,
    checks,
    email_check,
    missing_submissions,
    no_answers,
    percentile,
    promise_seconds,
    render,
    rounded_stats,
    scaling_sentence,
    unexpected_5xx,
)
from benchmarks.scale_browser import hidden_fields, totp


def request(name: str, status: int, ms: float = 10.0, shed: bool = False) -> list[Any]:
    return [name, status, ms, shed, 0.0]


def test_percentile_is_nearest_rank_and_nan_without_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.95))


def test_endpoints_split_shed_503s_from_other_5xx_and_give_throughput() -> None:
    phase = Phase(
        name="overload",
        seconds=10.0,
        requests=[
            request("POST /register/", 302, 100.0),
            request("POST /register/", 503, 5.0, shed=True),
            request("POST /register/", 503, 6.0, shed=False),  # no Retry-After: not the shedding
            request("GET /desk/", 500, 50.0),
            request("GET /desk/", 200, 40.0),
            request("GET /desk/", 0, 30000.0),  # no answer at all
        ],
    )
    endpoints = phase.endpoints()
    assert endpoints["POST /register/"]["n"] == 3
    assert endpoints["POST /register/"]["per_s"] == 0.3
    assert endpoints["POST /register/"]["shed_503"] == 1
    assert endpoints["POST /register/"]["other_5xx"] == 1
    assert endpoints["POST /register/"]["statuses"] == {"302": 1, "503": 2}
    assert endpoints["GET /desk/"]["other_5xx"] == 1
    assert endpoints["GET /desk/"]["no_answer"] == 1
    assert unexpected_5xx([phase]) == 2
    assert no_answers([phase]) == 1
    assert phase.p95_of(["GET /desk/"]) == 30000.0


def test_accepted_per_second_counts_only_accepted_submissions() -> None:
    phase = Phase(name="steady", seconds=4.0, accepted=[["REG-0000000A", "registration", 0.0]] * 6)
    assert phase.accepted_per_s() == 1.5
    assert Phase(name="empty", seconds=0.0).accepted_per_s() == 0.0


def test_a_submission_accepted_but_not_in_the_database_is_missing() -> None:
    stored = {"REG-00000001", "REC-00000002"}
    assert missing_submissions(["REG-00000001", "REC-00000002"], stored) == []
    assert missing_submissions(["REG-00000001", "REG-00000003", "REG-00000003"], stored) == [
        "REG-00000003"
    ]


def decided(
    reference: str, outbox_id: int | None, rows: int = 1, sent: float | None = 12.0
) -> DecisionRow:
    return DecisionRow(
        reference=reference,
        outbox_id=outbox_id,
        rows_for_ticket=rows,
        decided_at=10.0,
        sent_at=sent,
    )


def test_every_decision_e_mailed_exactly_once_passes() -> None:
    rows = [decided("REG-00000001", 1), decided("REC-00000002", 2)]
    result = email_check(rows, {1: 1, 2: 1}, {"REG-00000001": 1, "REC-00000002": 1})
    assert result["ok"] is True
    assert result["decided"] == 2
    assert result["examples"] == []


@pytest.mark.parametrize(
    ("rows", "per_row", "per_reference", "failure"),
    [
        ([decided("REG-00000001", 1)], {1: 2}, {"REG-00000001": 2}, "not_received_exactly_once"),
        ([decided("REG-00000001", 1)], {}, {}, "not_received_exactly_once"),
        ([decided("REG-00000001", None)], {}, {}, "no_decision_row"),
        ([decided("REG-00000001", 1, rows=2)], {1: 1}, {"REG-00000001": 1},
         "several_decision_rows"),
        ([decided("REG-00000001", 1)], {1: 1}, {}, "reference_not_named"),
    ],
    ids=["received twice", "never received", "no e-mail row", "two e-mail rows", "no reference"],
)  # fmt: skip
def test_a_decision_not_e_mailed_exactly_once_fails(
    rows: list[DecisionRow],
    per_row: dict[int, int],
    per_reference: dict[str, int],
    failure: str,
) -> None:
    result = email_check(rows, per_row, per_reference)
    assert result["ok"] is False
    assert result[failure] == 1
    assert result["examples"] and result["examples"][0].startswith("REG-00000001")


def test_the_promise_is_decision_to_smtp_accept_for_the_rows_sent() -> None:
    rows = [decided("REG-00000001", 1, sent=12.5), decided("REG-00000002", 2, sent=None)]
    assert promise_seconds(rows) == [2.5]
    stats = rounded_stats([1.0, 2.0, 700.0])
    assert stats["n"] == 3 and stats["over_600_s"] == 1 and stats["max_s"] == 700.0
    assert rounded_stats([])["p95_s"] is None


def test_the_scaling_sentence_says_what_the_ratio_means_on_this_machine() -> None:
    flat = scaling_sentence(2.0, 2.1, 2)
    assert flat.startswith("2 instances / 1 instance = 1.05")
    assert "share the same cores" in flat and "2-core" in flat
    grown = scaling_sentence(2.0, 3.6, 2)
    assert "= 1.80" in grown and "added capacity" in grown
    assert "no ratio" in scaling_sentence(0.0, 1.0, 2)


def good_report() -> dict[str, Any]:
    return {
        "cpus": 2,
        "loadavg_before": [1.0, 1.0, 1.0],
        "loadavg_after": [2.0, 2.0, 2.0],
        "phases": [
            {
                "name": "steady",
                "seconds": 10.0,
                "target_rate": 1.0,
                "accepted_per_s": 1.0,
                "endpoints": Phase(
                    name="steady", seconds=10.0, requests=[request("GET /desk/", 200)]
                ).endpoints(),
            }
        ],
        "scaling": {"one": 1.0, "two": 1.0, "sentence": scaling_sentence(1.0, 1.0, 2)},
        "unexpected_5xx": 0,
        "no_answer": 0,
        "login_errors": [],
        "submissions": {"accepted": 10, "missing": [], "stored_total": 12},
        "emails": email_check([decided("REG-00000001", 1)], {1: 1}, {"REG-00000001": 1}),
        "duplicate_deliveries": 0,
        "emails_received": 3,
        "outbox_unsent": 0,
        "promise": rounded_stats([2.0]),
        "desk_p95_overload_ms": 80.0,
        "desk_p95_steady_ms": 40.0,
        "drain_seconds": 3.0,
    }


def test_a_clean_run_passes_every_check_and_reports_them() -> None:
    report = good_report()
    assert all(passed for _, passed, _ in checks(report))
    text = render(report)
    assert "| GET /desk/ | 1 |" in text
    assert "desk p95 during the overload: 80.0 ms" in text
    assert "[FAIL]" not in text and text.count("[PASS]") == len(checks(report))


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"unexpected_5xx": 1}, "no 5xx other than the shed 503s"),
        ({"no_answer": 2}, "every request answered"),
        ({"submissions": {"accepted": 10, "missing": ["REG-00000009"], "stored_total": 9}},
         "every accepted submission stored"),
        ({"submissions": {"accepted": 0, "missing": [], "stored_total": 0}},
         "every accepted submission stored"),
        ({"emails": email_check([decided("REG-00000001", 1)], {1: 2}, {"REG-00000001": 2})},
         "every decision e-mailed exactly once"),
        ({"emails": email_check([], {}, {})}, "decisions were made"),
        ({"outbox_unsent": 1}, "outbox drained"),
        ({"duplicate_deliveries": 1}, "no duplicate SMTP delivery of any outbox row"),
        ({"login_errors": ["scale-steady-0 could not log in"]}, "agents logged in"),
    ],
)  # fmt: skip
def test_each_correctness_failure_fails_its_check_alone(
    change: dict[str, Any], failed: str
) -> None:
    report = {**good_report(), **change}
    verdict = {name: passed for name, passed, _ in checks(report)}
    assert verdict[failed] is False
    assert [name for name, passed in verdict.items() if not passed] == [failed]
    assert f"[FAIL] {failed}" in render(report)


def test_the_users_totp_code_is_the_one_the_desk_accepts() -> None:
    from members.second_factor import current_code, secret_from_b32
    from tests.second_factor import TEST_TOTP_SECRET

    for at in (0.0, 1_700_000_000.0, 1_700_000_029.0, 1_700_000_030.0):
        assert totp(TEST_TOTP_SECRET, at=at) == current_code(
            secret_from_b32(TEST_TOTP_SECRET), at=at
        )


def test_hidden_fields_come_from_the_form_posting_to_the_page() -> None:
    html = (
        '<form method="post" action="/i18n/setlang/"><input type="hidden" name="next" value="/">'
        "</form>"
        '<form method="post" novalidate class="request-form">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="abc">'
        '<input type="hidden" name="form_token" value="t1"><input type="text" name="email">'
        "</form>"
    )
    assert hidden_fields(html, "/register/") == {"csrfmiddlewaretoken": "abc", "form_token": "t1"}
    targeted = '<form method="post" action="/desk/tickets/REG-1/confirm/">'
    targeted += '<input type="hidden" name="csrfmiddlewaretoken" value="x"></form>'
    assert hidden_fields(targeted, "/desk/tickets/REG-1/confirm/") == {"csrfmiddlewaretoken": "x"}
    assert hidden_fields(targeted, "/desk/tickets/REG-1/reject/") == {}
