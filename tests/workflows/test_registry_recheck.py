"""A registry import re-checks the open requests of the members whose identity or coverages changed.

Each case goes through `manage.py import_members` (the CSV the insurer sends) and requests made
through intake; the API path is in tests/api/test_registry_upserts.py.
"""

from __future__ import annotations

import datetime
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from members.models import CoverageKind, Member
from tests.factories import MemberFactory, StaffFactory, TicketFactory
from tests.requests import intake_request
from tickets.models import ActorKind, EventKind, MatchResult, Ticket, TicketEvent, TicketState
from tickets.services import ticket_transition
from workflows.services.registry_recheck import NOW_MATCHES, STILL_MATCHES

pytestmark = pytest.mark.django_db

HEADER = "member_number,nir,last_name,first_name,birth_date,email,coverages"
IMPORT_ID = re.compile(r"import ([0-9a-f-]{36}):")


def _row(member: Member, **changes: str) -> str:
    values = {
        "member_number": member.member_number,
        "nir": member.nir,
        "last_name": member.last_name,
        "first_name": member.first_name,
        "birth_date": member.birth_date.isoformat(),
        "email": member.email,
        "coverages": ";".join(sorted(member.coverages.values_list("kind", flat=True))),
    }
    values.update(changes)
    return ",".join(values[name] for name in HEADER.split(","))


def _record(member: Member) -> dict[str, str]:
    """The member's registry row as import_members reads it (column -> text)."""
    return dict(zip(HEADER.split(","), _row(member).split(","), strict=True))


def _import(tmp_path: Path, rows: list[str], *args: str) -> tuple[str, str]:
    """Run import_members on these rows; return its output and the import id it printed."""
    path = tmp_path / "registry.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import_members", str(path), *args, stdout=out, stderr=io.StringIO())
    found = IMPORT_ID.search(out.getvalue())
    return out.getvalue(), found.group(1) if found else ""


def _history(ticket: Ticket) -> list[TicketEvent]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("created_at", "id"))


def _fresh(ticket: Ticket) -> Ticket:
    fresh: Ticket = Ticket.objects.get(pk=ticket.pk)
    return fresh


def test_a_pending_request_that_no_longer_matches_moves_to_identity_mismatch(
    tmp_path: Path,
) -> None:
    member = MemberFactory(first_name="Zoë")
    ticket = intake_request(member)
    assert ticket.state == TicketState.PENDING
    out, import_id = _import(tmp_path, [_row(member, first_name="Chloé")])
    assert import_id and "1 open requests re-checked" in out
    assert "1 moved to identity_mismatch" in out
    ticket = _fresh(ticket)
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    assert ticket.recheck_result == MatchResult.MISMATCH
    assert ticket.recheck_import_id == import_id
    assert not ticket.registry_now_matches
    last = _history(ticket)[-1]
    assert (last.kind, last.from_state, last.to_state) == (
        EventKind.TRANSITION,
        TicketState.PENDING,
        TicketState.IDENTITY_MISMATCH,
    )
    assert last.actor is None and last.actor_kind == ActorKind.SYSTEM
    assert last.reason == MatchResult.MISMATCH
    assert last.data["import_id"] == import_id
    assert last.data["source"] == "import_members"
    assert last.data["differing_fields"] == ["first_name"]
    # The history keeps no registry value: the import changed a name, the row says which field.
    assert "Chloé" not in str(last.data)


def test_a_mismatch_that_now_matches_is_marked_and_never_confirmed(tmp_path: Path) -> None:
    member = MemberFactory(last_name="Lefèvre", first_name="Zoë")
    ticket = intake_request(member, last_name="Lefebvre")
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    out, import_id = _import(tmp_path, [_row(member, last_name="Lefebvre")])
    assert "1 now match" in out
    ticket = _fresh(ticket)
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    assert ticket.registry_now_matches
    assert ticket.recheck_result == MatchResult.MATCH
    assert ticket.decided_at is None
    last = _history(ticket)[-1]
    assert (last.kind, last.reason) == (EventKind.REGISTRY, NOW_MATCHES)
    assert last.from_state == last.to_state == TicketState.IDENTITY_MISMATCH
    assert last.data["import_id"] == import_id
    assert last.data["previous_result"] == MatchResult.MISMATCH


def test_the_desk_shows_the_mark_and_the_import(tmp_path: Path, agent_client: Client) -> None:
    member = MemberFactory(last_name="Lefèvre")
    ticket = intake_request(member, last_name="Lefebvre")
    _out, import_id = _import(tmp_path, [_row(member, last_name="Lefebvre")])
    page = agent_client.get(
        f"/desk/tickets/{ticket.reference}/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Registry updated — now matches" in page
    assert import_id in page
    french = agent_client.get(
        f"/desk/tickets/{ticket.reference}/", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "Registre mis à jour — correspond désormais" in french


def test_a_change_the_matching_ignores_keeps_a_pending_request_pending(tmp_path: Path) -> None:
    """Case and accents do not count, as at intake: the re-check is recorded, nothing moves."""
    member = MemberFactory(last_name="Lefèvre", first_name="Zoë")
    ticket = intake_request(member)
    _out, import_id = _import(tmp_path, [_row(member, last_name="LEFEVRE")])
    ticket = _fresh(ticket)
    assert ticket.state == TicketState.PENDING and not ticket.registry_now_matches
    last = _history(ticket)[-1]
    assert (last.kind, last.reason, last.data["import_id"]) == (
        EventKind.REGISTRY,
        STILL_MATCHES,
        import_id,
    )


def test_coverages_lost_make_a_pending_registration_a_mismatch(tmp_path: Path) -> None:
    member = MemberFactory(coverages=[CoverageKind.HEALTH_PRINCIPAL])
    ticket = intake_request(member)
    _import(tmp_path, [_row(member, coverages=CoverageKind.HEALTH_BENEFICIARY)])
    ticket = _fresh(ticket)
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    assert ticket.recheck_result == MatchResult.NOT_ELIGIBLE
    assert _history(ticket)[-1].reason == MatchResult.NOT_ELIGIBLE


def test_an_approval_on_data_that_no_longer_holds_is_withdrawn(tmp_path: Path) -> None:
    member = MemberFactory(last_name="Lefèvre")
    ticket = intake_request(member, last_name="Lefebvre")
    maker = StaffFactory()
    ticket_transition(
        ticket=ticket,
        transition_name="request_approval",
        actor=maker,
        args=(maker, ["identity_mismatch"]),
    )
    assert _fresh(ticket).state == TicketState.AWAITING_APPROVAL
    _out, import_id = _import(tmp_path, [_row(member, birth_date="1981-04-12")])
    ticket = _fresh(ticket)
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    assert ticket.approval_requested_by is None and ticket.approval_reasons == []
    last = _history(ticket)[-1]
    assert (last.from_state, last.to_state) == (
        TicketState.AWAITING_APPROVAL,
        TicketState.IDENTITY_MISMATCH,
    )
    assert last.actor is None and last.data["import_id"] == import_id


def test_rows_that_change_nothing_do_not_touch_requests(tmp_path: Path) -> None:
    member = MemberFactory()
    ticket = intake_request(member)
    before = (_fresh(ticket).updated_at, len(_history(ticket)))
    # The same values, and a new e-mail address only (not an identity field).
    out, _id = _import(tmp_path, [_row(member, email="new@example.org")])
    assert "0 open requests re-checked" in out
    assert (_fresh(ticket).updated_at, len(_history(ticket))) == before
    assert _fresh(ticket).rechecked_at is None


def test_decided_requests_are_left_alone(tmp_path: Path) -> None:
    member = MemberFactory()
    decided = [
        TicketFactory(member=member, state=state)
        for state in (TicketState.CONFIRMED, TicketState.REJECTED)
    ]
    _import(tmp_path, [_row(member, first_name="Chloé")])
    for ticket in decided:
        fresh = _fresh(ticket)
        assert fresh.state == ticket.state and fresh.rechecked_at is None
        assert not TicketEvent.objects.filter(ticket=ticket).exists()


def test_importing_the_same_file_again_changes_nothing_more(tmp_path: Path) -> None:
    member = MemberFactory(first_name="Zoë")
    ticket = intake_request(member)
    rows = [_row(member, first_name="Chloé")]
    _out, first_id = _import(tmp_path, rows)
    after_first = len(_history(ticket))
    out, second_id = _import(tmp_path, rows)
    assert second_id != first_id and "0 open requests re-checked" in out
    assert len(_history(ticket)) == after_first
    assert _fresh(ticket).recheck_import_id == first_id


def test_a_dry_run_re_checks_nothing(tmp_path: Path) -> None:
    member = MemberFactory(first_name="Zoë")
    ticket = intake_request(member)
    out, import_id = _import(tmp_path, [_row(member, first_name="Chloé")], "--dry-run")
    assert "would import 1 rows" in out and not import_id
    assert _fresh(ticket).state == TicketState.PENDING


def test_each_batch_reads_the_open_requests_in_one_query(tmp_path: Path) -> None:
    """Set-based per batch: the tickets of the batch's changed members are read once."""
    members = [MemberFactory() for _ in range(6)]
    tickets = [intake_request(m) for m in members]
    rows = [_row(m, first_name="Chloé") for m in members]
    with CaptureQueriesContext(connection) as queries:
        out, _id = _import(tmp_path, rows, "--batch-size", "3")
    assert "6 open requests re-checked" in out
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "tickets_ticket" ' in q["sql"]
    ]
    assert len(reads) == 2  # two batches of three members, one read each
    assert all(_fresh(t).state == TicketState.IDENTITY_MISMATCH for t in tickets)


def test_requests_of_other_members_are_not_re_checked(tmp_path: Path) -> None:
    changed, other = MemberFactory(), MemberFactory()
    mine, theirs = intake_request(changed), intake_request(other)
    _import(tmp_path, [_row(changed, first_name="Chloé"), _row(other)])
    assert _fresh(mine).state == TicketState.IDENTITY_MISMATCH
    assert _fresh(theirs).state == TicketState.PENDING and _fresh(theirs).rechecked_at is None


def test_a_request_not_found_at_intake_is_linked_when_the_member_is_added(tmp_path: Path) -> None:
    """The registry lagged behind: the member added is the one the request typed; now a match."""
    absent = Member(
        member_number="700000001",
        last_name="Lefèvre",
        first_name="Zoë",
        birth_date=datetime.date(1980, 4, 12),
        email="zl@example.org",
    )
    ticket = intake_request(absent)
    assert ticket.member_id is None and ticket.match_result == MatchResult.NOT_FOUND
    row = "700000001,,Lefèvre,Zoë,1980-04-12,zl@example.org,health_principal"
    out, import_id = _import(tmp_path, [row])
    assert "1 members added" in out and "1 now match" in out
    ticket = _fresh(ticket)
    assert ticket.member == Member.objects.get(member_number="700000001")
    assert ticket.state == TicketState.IDENTITY_MISMATCH and ticket.registry_now_matches
    last = _history(ticket)[-1]
    assert last.reason == NOW_MATCHES and last.data["linked_to_new_member"] is True
    assert last.data["import_id"] == import_id


def test_the_history_rows_of_a_re_check_continue_each_tickets_hash_chain(tmp_path: Path) -> None:
    members = [MemberFactory(last_name="Lefèvre") for _ in range(3)]
    tickets = [intake_request(members[0]), intake_request(members[1], last_name="Lefebvre")]
    tickets.append(intake_request(members[2]))
    _import(
        tmp_path,
        [
            _row(members[0], last_name="LEFEVRE"),  # still matches
            _row(members[1], last_name="Lefebvre"),  # now matches
            _row(members[2], first_name="Chloé"),  # a transition
        ],
    )
    for ticket in tickets:
        history = _history(ticket)
        assert history[-1].data["import_id"]
        previous = ""
        for event in history:
            assert event.previous_hash == previous
            assert event.row_hash == event.compute_hash()
            previous = event.row_hash


@pytest.mark.django_db(transaction=True)
def test_the_members_of_a_batch_stay_locked_for_its_re_check() -> None:
    """The re-check does not lock again the members the batch read or updated: the batch holds
    the intake's lock (FOR NO KEY UPDATE) on them until it commits, as another session sees."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite locks the whole database)")
    import psycopg
    from django.conf import settings

    from members.services.registry import BatchChanges, member_import_rows, parse_member_row

    updated, coverage_only, untouched = MemberFactory(), MemberFactory(), MemberFactory()
    intake_request(updated)
    rows = [
        parse_member_row(1, {**_record(updated), "first_name": "Chloé"}),
        parse_member_row(2, {**_record(coverage_only), "coverages": "retiree"}),
    ]
    seen: list[tuple[BatchChanges, dict[int, bool]]] = []

    def lockable_elsewhere(changes: BatchChanges) -> None:
        db = settings.DATABASES["default"]
        params = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "dbname": db["NAME"]}
        with psycopg.connect(**params, autocommit=True) as other:
            free = {}
            for member in (updated, coverage_only, untouched):
                try:
                    other.execute(
                        "SELECT 1 FROM members_member WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                        [member.pk],
                    )
                    free[member.pk] = True
                except psycopg.errors.LockNotAvailable:
                    free[member.pk] = False
        seen.append((changes, free))

    member_import_rows(rows=enumerate(rows), on_changes=lockable_elsewhere)
    ((changes, free),) = seen
    assert set(changes.changed) == {updated.pk, coverage_only.pk}
    assert changes.locked == {updated.pk, coverage_only.pk}
    assert free == {updated.pk: False, coverage_only.pk: False, untouched.pk: True}
