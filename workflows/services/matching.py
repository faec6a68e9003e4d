"""The registry check made when a request arrives: always the same three queries."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from members.eligibility import eligibility_from_coverages
from members.models import Account, AccountStatus, Coverage, Member
from tickets.models import MatchResult, TicketKind
from workflows.identity import compare_identity

# A primary key no row has: lets every path run the same queries (equal work, docs/security.md §2).
NO_ROW = -1


@dataclass(frozen=True)
class RegistryCheck:
    result: str
    member: Member | None
    account: Account | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_clean_match(self) -> bool:
        return self.result == MatchResult.MATCH


def _find_member(member_number: str, nir: str) -> Member | None:
    """Find the registry row, and lock it for the rest of the intake's transaction.

    FOR NO KEY UPDATE serialises intake per member (two first requests at once would otherwise
    each see no open ticket and open one each); it is the lookup's own query, so no extra round
    trip, and it still lets tickets and accounts reference the row (their foreign-key checks take
    FOR KEY SHARE). SQLite ignores it: there every writer is serialised already.
    """
    members = Member.objects.select_for_update(no_key=True)
    if member_number:
        return members.filter(member_number=member_number).first()
    if nir:
        # Several registry rows may share a NIR only by data error; take none in that case.
        rows = list(members.filter(nir=nir)[:2])
        return rows[0] if len(rows) == 1 else None
    return members.filter(pk=NO_ROW).first()


def registry_check(
    *,
    kind: str,
    member_number: str,
    nir: str,
    last_name: str,
    first_name: str,
    birth_date: datetime.date | None,
) -> RegistryCheck:
    """Compare a request with the registry and the accounts; never tells the member anything.

    Runs inside the intake's transaction: the member's row stays locked until it commits.
    """
    member = _find_member(member_number, nir)
    member_pk = member.pk if member else NO_ROW
    coverages = list(Coverage.objects.filter(member_id=member_pk))
    account = Account.objects.filter(member_id=member_pk).first()
    if member is None:
        return RegistryCheck(
            MatchResult.NOT_FOUND, None, None, {"looked_up_by": _key(member_number)}
        )
    return registry_compare(
        kind=kind,
        member=member,
        coverages=coverages,
        account=account,
        last_name=last_name,
        first_name=first_name,
        birth_date=birth_date,
        looked_up_by=_key(member_number),
    )


def registry_compare(
    *,
    kind: str,
    member: Member,
    coverages: list[Coverage],
    account: Account | None,
    last_name: str,
    first_name: str,
    birth_date: datetime.date | None,
    looked_up_by: str,
) -> RegistryCheck:
    """The outcome of the check for a registry member already read: no query.

    The intake's check (above) and the re-check after a registry import
    (`workflows.services.registry_recheck`) both decide through this one function.
    """
    comparison = compare_identity(
        submitted_last_name=last_name,
        submitted_first_name=first_name,
        submitted_birth_date=birth_date or datetime.date.min,
        registry_last_name=member.last_name,
        registry_first_name=member.first_name,
        registry_birth_date=member.birth_date,
    )
    eligibility = eligibility_from_coverages(coverages, on=timezone.localdate())
    details: dict[str, Any] = {
        "looked_up_by": looked_up_by,
        "comparison": comparison.as_dict(),
        "eligibility": {"eligible": eligibility.eligible, "reason": eligibility.reason},
    }
    if not comparison.matches:
        return RegistryCheck(MatchResult.MISMATCH, member, account, details)
    if kind == TicketKind.REGISTRATION:
        if not eligibility.eligible:
            return RegistryCheck(MatchResult.NOT_ELIGIBLE, member, account, details)
        if account is not None:
            return RegistryCheck(MatchResult.ALREADY_REGISTERED, member, account, details)
        return RegistryCheck(MatchResult.MATCH, member, account, details)
    if account is None:
        return RegistryCheck(MatchResult.NO_ACCOUNT, member, None, details)
    if account.status == AccountStatus.CLOSED:
        return RegistryCheck(MatchResult.ACCOUNT_CLOSED, member, account, details)
    if account.status == AccountStatus.FROZEN:
        return RegistryCheck(MatchResult.ACCOUNT_FROZEN, member, account, details)
    return RegistryCheck(MatchResult.MATCH, member, account, details)


def _key(member_number: str) -> str:
    return "member_number" if member_number else "nir"
