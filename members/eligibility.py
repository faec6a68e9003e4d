"""Who may hold a client-area account (docs/product.md, "Who may hold a client-area account")."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from members.models import ELIGIBLE_COVERAGE_KINDS, Coverage, CoverageKind


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    # Internal code for the agent: "eligible", "beneficiary_only", "no_active_coverage".
    reason: str
    kinds: tuple[str, ...] = ()


def eligibility_from_coverages(coverages: Iterable[Coverage], *, on: datetime.date) -> Eligibility:
    """Eligible when one coverage in force on `on` is of an eligible kind; beneficiaries are not."""
    active = [c for c in coverages if c.is_active_on(on)]
    eligible_kinds = tuple(sorted({c.kind for c in active if c.kind in ELIGIBLE_COVERAGE_KINDS}))
    if eligible_kinds:
        return Eligibility(True, "eligible", eligible_kinds)
    if any(c.kind == CoverageKind.HEALTH_BENEFICIARY for c in active):
        return Eligibility(False, "beneficiary_only", (CoverageKind.HEALTH_BENEFICIARY,))
    return Eligibility(False, "no_active_coverage")
