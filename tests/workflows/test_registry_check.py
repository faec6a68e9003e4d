"""The registry check at intake: its verdicts, and equal work whatever the verdict."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.models import AccountStatus, CoverageKind, Member
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import MatchResult, TicketKind
from workflows.services.matching import RegistryCheck, registry_check

pytestmark = pytest.mark.django_db

BORN = datetime.date(1980, 4, 12)
RETIREE_NIR = "180017512345660"
# The registry check runs exactly this many queries on every path (member, coverages, account).
QUERIES_PER_CHECK = 3


def check(member_number: str = "", **overrides: Any) -> RegistryCheck:
    fields: dict[str, Any] = {
        "kind": TicketKind.REGISTRATION,
        "member_number": member_number,
        "nir": "",
        "last_name": "Martin",
        "first_name": "Zoë",
        "birth_date": BORN,
    }
    fields.update(overrides)
    return registry_check(**fields)


@pytest.fixture
def principal() -> Member:
    return MemberFactory(member_number="100000001", last_name="Martin", first_name="Zoë")


def test_an_exact_request_matches(principal: Member) -> None:
    result = check("100000001")
    assert result.result == MatchResult.MATCH
    assert result.is_clean_match
    assert result.member == principal
    assert result.account is None
    assert result.details["comparison"]["matches"] is True
    assert result.details["eligibility"] == {"eligible": True, "reason": "eligible"}
    assert result.details["looked_up_by"] == "member_number"


def test_case_accents_and_spacing_do_not_count(principal: Member) -> None:
    result = check("100000001", last_name="  MARTIN ", first_name="zoe")
    assert result.result == MatchResult.MATCH


def test_a_one_letter_typo_is_a_mismatch(principal: Member) -> None:
    result = check("100000001", last_name="Martn")
    assert result.result == MatchResult.MISMATCH
    assert not result.is_clean_match
    assert result.member == principal
    comparison = result.details["comparison"]
    assert comparison["differing_fields"] == ["last_name"]
    [last] = [f for f in comparison["fields"] if f["field"] == "last_name"]
    assert 0.8 < last["closeness"] < 1.0


def test_swapped_names_are_a_mismatch_flagged_as_swapped(principal: Member) -> None:
    result = check("100000001", last_name="Zoë", first_name="Martin")
    assert result.result == MatchResult.MISMATCH
    assert result.details["comparison"]["names_swapped"] is True
    assert result.details["comparison"]["differing_fields"] == ["last_name", "first_name"]


def test_a_homonym_born_another_day_is_a_mismatch(principal: Member) -> None:
    result = check("100000001", birth_date=datetime.date(1981, 4, 12))
    assert result.result == MatchResult.MISMATCH
    assert result.details["comparison"]["differing_fields"] == ["birth_date"]


def test_an_unknown_member_id_is_not_found(principal: Member) -> None:
    result = check("999999999")
    assert result.result == MatchResult.NOT_FOUND
    assert (result.member, result.account) == (None, None)
    assert "comparison" not in result.details


def test_a_beneficiary_is_not_eligible() -> None:
    MemberFactory(member_number="100000002", coverages=[CoverageKind.HEALTH_BENEFICIARY])
    result = check("100000002")
    assert result.result == MatchResult.NOT_ELIGIBLE
    assert result.details["eligibility"] == {"eligible": False, "reason": "beneficiary_only"}


def test_a_member_without_coverage_is_not_eligible() -> None:
    MemberFactory(member_number="100000003", coverages=[])
    assert check("100000003").result == MatchResult.NOT_ELIGIBLE


def test_a_member_with_an_account_is_already_registered() -> None:
    account = MemberAccountFactory(member=MemberFactory(member_number="100000004"))
    result = check("100000004")
    assert result.result == MatchResult.ALREADY_REGISTERED
    assert result.account == account


def test_a_mismatch_wins_over_eligibility_and_account() -> None:
    """What the registry says about a person is only used once the identity matched."""
    MemberFactory(member_number="100000005", coverages=[CoverageKind.HEALTH_BENEFICIARY])
    MemberAccountFactory(member=MemberFactory(member_number="100000006"))
    assert check("100000005", last_name="Martine").result == MatchResult.MISMATCH
    assert check("100000006", last_name="Martine").result == MatchResult.MISMATCH


def test_a_retiree_without_member_id_is_found_by_nir() -> None:
    retiree = MemberFactory(
        member_number="100000007",
        nir=RETIREE_NIR,
        last_name="Nguyễn",
        first_name="Thị Lan",
        birth_date=datetime.date(1948, 3, 5),
        coverages=[CoverageKind.RETIREE],
    )
    result = check(
        nir=RETIREE_NIR,
        last_name="NGUYEN",
        first_name="Thi Lan",
        birth_date=datetime.date(1948, 3, 5),
    )
    assert result.result == MatchResult.MATCH
    assert result.member == retiree
    assert result.details["looked_up_by"] == "nir"


def test_a_nir_shared_by_two_registry_rows_finds_no_one() -> None:
    MemberFactory(member_number="100000008", nir=RETIREE_NIR)
    MemberFactory(member_number="100000009", nir=RETIREE_NIR)
    assert check(nir=RETIREE_NIR).result == MatchResult.NOT_FOUND


def test_no_identifier_at_all_finds_no_one(principal: Member) -> None:
    assert check().result == MatchResult.NOT_FOUND


@pytest.mark.parametrize(
    ("status", "expected"),
    [(AccountStatus.ACTIVE, MatchResult.MATCH), (AccountStatus.CLOSED, MatchResult.ACCOUNT_CLOSED)],
)
def test_a_recovery_needs_an_active_account(status: str, expected: str) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="100000010"), status=status)
    MemberFactory(member_number="100000011")
    assert check("100000010", kind=TicketKind.RECOVERY).result == expected
    assert check("100000011", kind=TicketKind.RECOVERY).result == MatchResult.NO_ACCOUNT


# --- equal work -------------------------------------------------------------------------------


def _registry_for_every_verdict() -> None:
    MemberFactory(member_number="200000001")
    MemberFactory(member_number="200000002", coverages=[CoverageKind.HEALTH_BENEFICIARY])
    MemberAccountFactory(member=MemberFactory(member_number="200000003"))
    MemberFactory(member_number="200000004", nir=RETIREE_NIR, coverages=[CoverageKind.RETIREE])


VERDICTS: dict[str, tuple[Callable[[], RegistryCheck], str]] = {
    "match": (lambda: check("200000001"), MatchResult.MATCH),
    "mismatch": (lambda: check("200000001", first_name="Zoé-Anne"), MatchResult.MISMATCH),
    "not_found": (lambda: check("299999999"), MatchResult.NOT_FOUND),
    "not_eligible": (lambda: check("200000002"), MatchResult.NOT_ELIGIBLE),
    "already_registered": (lambda: check("200000003"), MatchResult.ALREADY_REGISTERED),
    "retiree_by_nir": (lambda: check(nir=RETIREE_NIR), MatchResult.MATCH),
    "unknown_nir": (lambda: check(nir="255069912312330"), MatchResult.NOT_FOUND),
}


@pytest.mark.parametrize("verdict", list(VERDICTS))
def test_every_verdict_costs_the_same_queries(verdict: str, django_assert_num_queries: Any) -> None:
    _registry_for_every_verdict()
    run, expected = VERDICTS[verdict]
    with django_assert_num_queries(QUERIES_PER_CHECK):
        result = run()
    assert result.result == expected


def test_the_queries_have_the_same_shape_for_every_verdict() -> None:
    """Not only as many queries: the same statements, whether or not a row exists."""
    _registry_for_every_verdict()
    shapes = {}
    for verdict in ("match", "mismatch", "not_found", "not_eligible", "already_registered"):
        with CaptureQueriesContext(connection) as ctx:
            VERDICTS[verdict][0]()
        shapes[verdict] = [q["sql"].split(" WHERE ")[0] for q in ctx.captured_queries]
    assert len({tuple(s) for s in shapes.values()}) == 1, shapes
