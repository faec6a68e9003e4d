"""A registry import re-checks the open requests of the members it changed.

`registry_import` is what `manage.py import_members` and the registry API call: it gives the run
an id, streams the rows through `members.services.registry.member_import_rows` batch by batch,
and, inside each batch's transaction, re-checks the open tickets of the members whose identity
fields (NIR, names, birth date) or coverages changed, with the intake's own comparison
(`workflows.services.matching.registry_compare`):

- a pending ticket that still matches stays pending; the re-check is recorded;
- a pending ticket that no longer matches moves to `identity_mismatch`
  (`flag_mismatch_after_registry_change`, a system transition);
- a ticket in `identity_mismatch` that now matches is marked "registry updated — now matches"
  (`Ticket.registry_now_matches`, shown on the desk); it is never confirmed automatically;
- a ticket awaiting a second person's approval that no longer matches has its approval withdrawn
  and goes to `identity_mismatch` (`withdraw_approval_after_registry_change`): nobody approves a
  confirmation asked for on data that no longer holds. One that still matches keeps its
  approval request (the approver sees the registry as it now is) and, if it was asked for from
  the mismatch queue, gets the mark.

Every re-checked ticket gets exactly one history row carrying the import's id. Rows the import
left unchanged, and decided tickets, are not touched. The reads are set-based: per batch one
query locks the changed members (those whose row the batch's UPDATE wrote are locked by it
already), one reads (and locks) their open tickets, one their coverages,
one their accounts (plus, when requests were waiting for members the batch added, one read of
those members); the re-checks that change no state are saved and recorded in three more
queries (their history rows continue each ticket's hash chain); a transition goes through
`ticket_transition` like any other. Locking the members first, as the intake does, means a request
arriving during the batch is either seen by the re-check or checked against the new registry.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from members.models import Account, Coverage, Member
from members.services.registry import (
    BATCH_SIZE,
    BatchChanges,
    ImportReport,
    MemberRow,
    RowError,
    member_import_rows,
)
from tickets.models import OPEN_STATES, ActorKind, EventKind, Ticket, TicketEvent, TicketState
from tickets.services import ticket_transition
from workflows.services.matching import registry_compare

logger = logging.getLogger(__name__)

# The history reasons of a re-check that changes no state.
STILL_MATCHES = "still_matches"
NOW_MATCHES = "now_matches"
STILL_NO_MATCH = "still_no_match"
NO_LONGER_MATCHES = "no_longer_matches"
_RECHECK_FIELDS = [
    "member",
    "recheck_result",
    "recheck_import_id",
    "rechecked_at",
    "registry_now_matches",
]


@dataclass
class RecheckCounts:
    """What the re-checks of one import did, ticket by ticket."""

    rechecked: int = 0
    now_match: int = 0
    moved_to_mismatch: int = 0
    approvals_withdrawn: int = 0

    def add(self, other: RecheckCounts) -> None:
        self.rechecked += other.rechecked
        self.now_match += other.now_match
        self.moved_to_mismatch += other.moved_to_mismatch
        self.approvals_withdrawn += other.approvals_withdrawn


@dataclass(frozen=True)
class RegistryImport:
    """One import run: its id (in every history row it caused), the rows' report, the re-checks."""

    import_id: str
    source: str
    report: ImportReport
    recheck: RecheckCounts = field(default_factory=RecheckCounts)


def registry_import(
    *,
    rows: Iterable[tuple[int, MemberRow | RowError]],
    source: str,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> RegistryImport:
    """Import registry rows in batches and re-check the open requests of the members changed.

    `source` says where the rows came from (`import_members`, `api:<client id>`); it is kept
    with the import id in the history rows. A dry run writes nothing and re-checks nothing.
    """
    import_id = str(uuid.uuid4())
    counts = RecheckCounts()

    def on_changes(changes: BatchChanges) -> None:
        counts.add(
            registry_recheck(
                member_ids=changes.changed,
                added=changes.added,
                locked=changes.locked,
                import_id=import_id,
                source=source,
            )
        )

    report = member_import_rows(
        rows=rows,
        dry_run=dry_run,
        batch_size=batch_size,
        progress=progress,
        on_changes=on_changes,
    )
    # Counts and ids only: never a registry value (core/logging.py writes the message only).
    logger.info(
        "registry import %s from %s%s: %d rows imported, %d rejected, %d members added, "
        "%d changed; %d open requests re-checked, %d now match, %d moved to identity_mismatch, "
        "%d approvals withdrawn",
        import_id,
        source,
        " (dry run)" if dry_run else "",
        report.imported,
        len(report.rejected),
        report.added,
        report.changed,
        counts.rechecked,
        counts.now_match,
        counts.moved_to_mismatch,
        counts.approvals_withdrawn,
    )
    return RegistryImport(import_id=import_id, source=source, report=report, recheck=counts)


@transaction.atomic
def registry_recheck(
    *,
    member_ids: list[int],
    import_id: str,
    source: str,
    added: dict[str, int] | None = None,
    locked: frozenset[int] = frozenset(),
) -> RecheckCounts:
    """Re-check the open tickets of these (changed) members against the registry as it now is.

    `added` (member number -> id of a member the batch created): an open request that typed
    that member number and was not found in the registry at intake is linked to the new member
    and checked like the others. `locked`: members among `member_ids` whose row the batch's
    transaction has already updated (so locked): not locked a second time. Runs in the import
    batch's transaction; a constant number of queries whatever the batch size, plus the
    transitions (each through `ticket_transition`).
    """
    counts = RecheckCounts()
    added = added or {}
    if not member_ids and not added:
        return counts
    # The intake's lock (FOR NO KEY UPDATE), taken first, in the same order as the intake. A
    # member the batch added needs none: nobody else sees it before the batch commits; nor
    # one the batch updated: its UPDATE holds that lock already.
    to_lock = [pk for pk in member_ids if pk not in locked]
    if to_lock:
        list(
            Member.objects.select_for_update(no_key=True)
            .filter(pk__any_of=to_lock)
            .values_list("pk", flat=True)
        )
    of_members = Q(member_id__any_of=member_ids)
    if added:
        # ticket_sub_member_idx: the requests that typed one of the new member numbers.
        of_members |= Q(member__isnull=True, submitted_member_number__any_of=list(added))
    tickets: list[Ticket] = list(
        Ticket.objects.select_for_update(of=("self",))
        .select_related("member")
        .filter(of_members, state__in=OPEN_STATES)
        .order_by("id")
    )
    if not tickets:
        return counts
    linked = {t.pk for t in tickets if t.member_id is None}
    if linked:
        new_ids = [added[t.submitted_member_number] for t in tickets if t.pk in linked]
        new_members = Member.objects.in_bulk(new_ids)
        for ticket in tickets:
            if ticket.pk in linked:
                ticket.member = new_members[added[ticket.submitted_member_number]]
    with_tickets = sorted({t.member_id for t in tickets if t.member_id is not None})
    coverages: dict[int, list[Coverage]] = {}
    for coverage in Coverage.objects.filter(member_id__in=with_tickets):
        coverages.setdefault(coverage.member_id, []).append(coverage)
    accounts = {a.member_id: a for a in Account.objects.filter(member_id__in=with_tickets)}
    now = timezone.now()
    plain: list[tuple[Ticket, str, dict[str, Any]]] = []
    for ticket in tickets:
        member = ticket.member
        if member is None:
            continue
        recorded = _recheck_one(
            ticket=ticket,
            member=member,
            coverages=coverages.get(member.pk, []),
            account=accounts.get(member.pk),
            import_id=import_id,
            source=source,
            now=now,
            counts=counts,
            linked=ticket.pk in linked,
        )
        if recorded is not None:
            plain.append((ticket, *recorded))
    if plain:
        _record_plain(plain, now)
    return counts


def _record_plain(plain: list[tuple[Ticket, str, dict[str, Any]]], now: datetime.datetime) -> None:
    """Save the re-checks that change no state and add their history rows, in three queries.

    The same rows `event_record` writes one by one: each continues its ticket's hash chain
    (the tickets are locked, so nobody adds a row meanwhile).
    """
    ids = [ticket.pk for ticket, _reason, _data in plain]
    latest = TicketEvent.objects.filter(ticket=OuterRef("pk")).order_by("-created_at", "-id")
    previous = dict(
        Ticket.objects.filter(pk__in=ids)
        .annotate(last_hash=Subquery(latest.values("row_hash")[:1]))
        .values_list("pk", "last_hash")
    )
    for ticket, _reason, _data in plain:
        ticket.updated_at = now
    Ticket.objects.bulk_update([t for t, _r, _d in plain], [*_RECHECK_FIELDS, "updated_at"])
    events = []
    for ticket, reason, data in plain:
        event = TicketEvent(
            ticket=ticket,
            kind=EventKind.REGISTRY,
            actor=None,
            actor_kind=ActorKind.SYSTEM,
            from_state=ticket.state,
            to_state=ticket.state,
            reason=reason,
            data=data,
            created_at=now,
            previous_hash=previous.get(ticket.pk) or "",
        )
        event.row_hash = event.compute_hash()
        events.append(event)
    # Registry re-checks are not public events (no webhook delivery, workflows.services.events).
    TicketEvent.objects.bulk_create(events)


def _recheck_one(
    *,
    ticket: Ticket,
    member: Member,
    coverages: list[Coverage],
    account: Account | None,
    import_id: str,
    source: str,
    now: datetime.datetime,
    counts: RecheckCounts,
    linked: bool,
) -> tuple[str, dict[str, Any]] | None:
    """Compare one ticket again; run its transition, or return the history row to record."""
    check = registry_compare(
        kind=ticket.kind,
        member=member,
        coverages=coverages,
        account=account,
        last_name=ticket.submitted_last_name,
        first_name=ticket.submitted_first_name,
        birth_date=ticket.submitted_birth_date,
        looked_up_by=str(ticket.match_details.get("looked_up_by", "member_number")),
    )
    previous = ticket.recheck_result or ticket.match_result
    data: dict[str, Any] = {
        "import_id": import_id,
        "source": source,
        "result": check.result,
        "previous_result": previous,
        "differing_fields": check.details["comparison"]["differing_fields"],
    }
    if linked:
        data["linked_to_new_member"] = True
    ticket.recheck_result = check.result
    ticket.recheck_import_id = import_id
    ticket.rechecked_at = now
    counts.rechecked += 1
    matches = check.is_clean_match
    if not matches and ticket.state in (TicketState.PENDING, TicketState.AWAITING_APPROVAL):
        pending = ticket.state == TicketState.PENDING
        ticket_transition(
            ticket=ticket,
            transition_name=(
                "flag_mismatch_after_registry_change"
                if pending
                else "withdraw_approval_after_registry_change"
            ),
            actor=None,
            reason=check.result,
            data=data,
        )
        if pending:
            counts.moved_to_mismatch += 1
        else:
            counts.approvals_withdrawn += 1
        return None
    was_marked = ticket.registry_now_matches
    from_mismatch = TicketState.IDENTITY_MISMATCH in (ticket.state, ticket.approval_from_state)
    ticket.registry_now_matches = matches and from_mismatch
    if ticket.registry_now_matches:
        reason = NOW_MATCHES
        counts.now_match += 1
    elif matches:
        reason = STILL_MATCHES
    else:
        reason = NO_LONGER_MATCHES if was_marked else STILL_NO_MATCH
    return reason, data


__all__ = [
    "NOW_MATCHES",
    "NO_LONGER_MATCHES",
    "STILL_MATCHES",
    "STILL_NO_MATCH",
    "RecheckCounts",
    "RegistryImport",
    "registry_import",
    "registry_recheck",
]
