"""Who may hold a client-area account: the eligibility rule over a member's coverages."""

from __future__ import annotations

import datetime

import pytest

from members.eligibility import eligibility_from_coverages
from members.models import Coverage, CoverageKind
from tests.factories import MemberFactory

TODAY = datetime.date(2025, 6, 15)
YESTERDAY = TODAY - datetime.timedelta(days=1)
TOMORROW = TODAY + datetime.timedelta(days=1)


def cov(
    kind: str, start: datetime.date | None = None, end: datetime.date | None = None
) -> Coverage:
    """An unsaved coverage: the rule is a pure function of the coverages it is given."""
    return Coverage(kind=kind, start=start, end=end)


@pytest.mark.parametrize(
    "kind",
    [CoverageKind.HEALTH_PRINCIPAL, CoverageKind.PROVIDENT_EMPLOYEE, CoverageKind.RETIREE],
)
def test_each_eligible_kind_alone_is_eligible(kind: str) -> None:
    result = eligibility_from_coverages([cov(kind)], on=TODAY)
    assert result.eligible is True
    assert result.reason == "eligible"
    assert result.kinds == (kind,)


def test_a_beneficiary_only_is_refused() -> None:
    result = eligibility_from_coverages([cov(CoverageKind.HEALTH_BENEFICIARY)], on=TODAY)
    assert result.eligible is False
    assert result.reason == "beneficiary_only"
    assert result.kinds == (CoverageKind.HEALTH_BENEFICIARY,)


def test_no_coverage_at_all_is_refused() -> None:
    result = eligibility_from_coverages([], on=TODAY)
    assert (result.eligible, result.reason, result.kinds) == (False, "no_active_coverage", ())


def test_an_expired_coverage_does_not_count() -> None:
    result = eligibility_from_coverages(
        [cov(CoverageKind.HEALTH_PRINCIPAL, start=datetime.date(2000, 1, 1), end=YESTERDAY)],
        on=TODAY,
    )
    assert (result.eligible, result.reason) == (False, "no_active_coverage")


def test_a_future_coverage_does_not_count_yet() -> None:
    result = eligibility_from_coverages([cov(CoverageKind.RETIREE, start=TOMORROW)], on=TODAY)
    assert (result.eligible, result.reason) == (False, "no_active_coverage")


def test_first_and_last_days_of_a_coverage_count() -> None:
    starts_today = cov(CoverageKind.PROVIDENT_EMPLOYEE, start=TODAY)
    ends_today = cov(CoverageKind.PROVIDENT_EMPLOYEE, start=datetime.date(2001, 1, 1), end=TODAY)
    assert eligibility_from_coverages([starts_today], on=TODAY).eligible
    assert eligibility_from_coverages([ends_today], on=TODAY).eligible


def test_a_beneficiary_who_is_also_principal_elsewhere_is_eligible() -> None:
    result = eligibility_from_coverages(
        [cov(CoverageKind.HEALTH_BENEFICIARY), cov(CoverageKind.HEALTH_PRINCIPAL)], on=TODAY
    )
    assert result.eligible is True
    assert result.kinds == (CoverageKind.HEALTH_PRINCIPAL,)


def test_an_expired_principal_and_an_active_beneficiary_is_beneficiary_only() -> None:
    result = eligibility_from_coverages(
        [
            cov(CoverageKind.HEALTH_PRINCIPAL, end=YESTERDAY),
            cov(CoverageKind.HEALTH_BENEFICIARY, start=datetime.date(2020, 1, 1)),
        ],
        on=TODAY,
    )
    assert (result.eligible, result.reason) == (False, "beneficiary_only")


def test_an_expired_beneficiary_alone_has_no_active_coverage() -> None:
    result = eligibility_from_coverages(
        [cov(CoverageKind.HEALTH_BENEFICIARY, end=YESTERDAY)], on=TODAY
    )
    assert (result.eligible, result.reason) == (False, "no_active_coverage")


def test_several_eligible_kinds_are_all_listed_sorted() -> None:
    result = eligibility_from_coverages(
        [
            cov(CoverageKind.RETIREE),
            cov(CoverageKind.HEALTH_PRINCIPAL),
            cov(CoverageKind.PROVIDENT_EMPLOYEE, end=YESTERDAY),
        ],
        on=TODAY,
    )
    assert result.kinds == (CoverageKind.HEALTH_PRINCIPAL, CoverageKind.RETIREE)


def test_the_day_asked_decides(db: None) -> None:
    """The same stored coverages give different answers on different days."""
    member = MemberFactory(coverages=[])
    Coverage.objects.create(
        member=member,
        kind=CoverageKind.RETIREE,
        start=datetime.date(2024, 1, 1),
        end=datetime.date(2024, 12, 31),
    )
    coverages = list(member.coverages.all())
    assert not eligibility_from_coverages(coverages, on=datetime.date(2023, 12, 31)).eligible
    assert eligibility_from_coverages(coverages, on=datetime.date(2024, 7, 1)).eligible
    assert not eligibility_from_coverages(coverages, on=datetime.date(2025, 1, 1)).eligible
