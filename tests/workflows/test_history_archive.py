"""`archive_history`: decided tickets' whole chains exported month by month, then dropped, and
every chain left (and every archive file) still verifies (docs/operations.md, "Archiving")."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from members.models import Account
from tests.factories import TicketFactory
from tickets.management.commands.verify_history import archive_breaks, history_breaks
from tickets.models import RejectionReason, Ticket, TicketEvent, TicketState
from tickets.services import ticket_claim, ticket_note
from workflows.models import OutboxMessage, OutboxStatus, RequestAlias
from workflows.services.archive import history_archive
from workflows.services.decisions import ticket_reject

pytestmark = pytest.mark.django_db


def _decided(agent: Account, when: dt.datetime, *, notes: int = 1) -> Ticket:
    """A rejected ticket with a few history rows, decided at `when`, its e-mails sent."""
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent)
    for index in range(notes):
        ticket_note(reference=ticket.reference, actor=agent, body=f"note {index}")
    ticket_reject(
        reference=ticket.reference, actor=agent, reason=RejectionReason.IDENTITY_NOT_CONFIRMED
    )
    Ticket.objects.filter(pk=ticket.pk).update(decided_at=when)
    OutboxMessage.objects.filter(ticket=ticket).update(status=OutboxStatus.SENT, sent_at=when)
    return Ticket.objects.get(pk=ticket.pk)


def _utc(year: int, month: int, day: int = 15) -> dt.datetime:
    return dt.datetime(year, month, day, 12, tzinfo=dt.UTC)


@override_settings(GUICHET_RETENTION_BATCH=2)
def test_archive_exports_each_month_then_drops_only_decided_tickets_before_the_cut(
    agent: Account, tmp_path: Path
) -> None:
    january = [_decided(agent, _utc(2021, 1, day), notes=day % 3) for day in (3, 9, 20)]
    february = _decided(agent, _utc(2021, 2))
    march = _decided(agent, _utc(2021, 3))  # the cut month: kept
    still_open = TicketFactory()
    ticket_note(reference=still_open.reference, actor=agent, body="in progress")
    RequestAlias.objects.create(reference="ALIAS0000001", ticket=january[0])
    chains = {
        t.reference: list(t.events.order_by("created_at", "id").values_list("row_hash", flat=True))
        for t in [*january, february]
    }

    results = history_archive(before="2021-03", out=tmp_path)

    assert [(r.month, r.tickets, r.dropped_tickets, r.kept) for r in results] == [
        ("2021-01", 3, 3, []),
        ("2021-02", 1, 1, []),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "history-2021-01.jsonl",
        "history-2021-01.manifest.json",
        "history-2021-02.jsonl",
        "history-2021-02.manifest.json",
    ]
    # Gone from the database: the tickets, their events, aliases and outbox rows.
    archived = [t.pk for t in [*january, february]]
    assert not Ticket.objects.filter(pk__in=archived).exists()
    assert not TicketEvent.objects.filter(ticket_id__in=archived).exists()
    assert not RequestAlias.objects.filter(ticket_id__in=archived).exists()
    assert not OutboxMessage.objects.filter(ticket_id__in=archived).exists()
    # Kept: the cut month and the open ticket, with their whole chains; everything verifies.
    assert Ticket.objects.filter(pk__in=[march.pk, still_open.pk]).count() == 2
    assert still_open.events.count() == 1
    assert history_breaks() == {}
    call_command("verify_history")
    # The archive holds every chain whole, in order, with the manifest's final hashes.
    lines = [json.loads(line) for line in (tmp_path / "history-2021-01.jsonl").open()]
    exported = {c["ticket"]["reference"]: [e["row_hash"] for e in c["events"]] for c in lines}
    assert exported == {t.reference: chains[t.reference] for t in january}
    assert lines[0]["aliases"][0]["reference"] == "ALIAS0000001"
    assert all("recipient" not in m and "context" not in m for c in lines for m in c["outbox"])
    assert all("secret_answer_hash" not in c["ticket"] for c in lines)
    manifest = json.loads((tmp_path / "history-2021-01.manifest.json").read_text())
    assert manifest["final_hashes"] == {t.reference: chains[t.reference][-1] for t in january}
    for name in ("history-2021-01.jsonl", "history-2021-02.jsonl"):
        assert archive_breaks(tmp_path / name) == []
    call_command("verify_history", "--archive", str(tmp_path / "history-2021-01.jsonl"))


def test_an_edited_archive_file_fails_verification(agent: Account, tmp_path: Path) -> None:
    _decided(agent, _utc(2021, 1), notes=2)
    history_archive(before="2021-02", out=tmp_path)
    path = tmp_path / "history-2021-01.jsonl"
    path.write_text(path.read_text().replace("note 1", "note X"))
    problems = archive_breaks(path)
    assert any("SHA-256" in p for p in problems)
    assert any("content does not match its hash" in p for p in problems)
    with pytest.raises(CommandError):
        call_command("verify_history", "--archive", str(path))


def test_a_ticket_with_an_email_still_to_send_waits(agent: Account, tmp_path: Path) -> None:
    ticket = _decided(agent, _utc(2021, 1))
    OutboxMessage.objects.filter(ticket=ticket).update(status=OutboxStatus.PENDING)
    assert OutboxMessage.objects.filter(ticket=ticket).exists()
    assert history_archive(before="2021-02", out=tmp_path) == []
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_dry_run_counts_and_changes_nothing(agent: Account, tmp_path: Path) -> None:
    ticket = _decided(agent, _utc(2021, 1), notes=2)
    events = ticket.events.count()
    [result] = history_archive(before="2021-02", out=tmp_path / "out", dry_run=True)
    assert (result.month, result.tickets, result.events) == ("2021-01", 1, events)
    assert not (tmp_path / "out").exists()
    assert ticket.events.count() == events


def test_a_month_already_archived_is_not_overwritten(agent: Account, tmp_path: Path) -> None:
    _decided(agent, _utc(2021, 1))
    (tmp_path / "history-2021-01.jsonl").write_text("earlier archive\n")
    with pytest.raises(CommandError, match="already exists"):
        call_command("archive_history", "--before", "2021-02", "--out", str(tmp_path))
    assert (tmp_path / "history-2021-01.jsonl").read_text() == "earlier archive\n"


# --- the append-only trigger (PostgreSQL) ----------------------------------------------------


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")


def _raw(sql: str, params: list[object]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_an_ordinary_delete_of_a_decided_tickets_history_is_still_refused(
    postgresql: None, agent: Account
) -> None:
    ticket = _decided(agent, _utc(2021, 1))
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("DELETE FROM tickets_ticketevent WHERE ticket_id = %s", [ticket.pk])
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("UPDATE tickets_ticketevent SET body = 'x' WHERE ticket_id = %s", [ticket.pk])
    # The archive function's setting does not outlive its call.
    _raw("SELECT tickets_history_archive_drop(%s::bigint[])", [[]])
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("DELETE FROM tickets_ticketevent WHERE ticket_id = %s", [ticket.pk])
    assert ticket.events.count() == 3


def test_the_archive_function_never_drops_an_open_tickets_history(
    postgresql: None, agent: Account
) -> None:
    ticket = TicketFactory()
    ticket_note(reference=ticket.reference, actor=agent, body="in progress")
    assert ticket.state == TicketState.PENDING
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("SELECT tickets_history_archive_drop(%s::bigint[])", [[ticket.pk]])
    assert ticket.events.count() == 1


def test_a_ticket_whose_chain_grew_after_the_export_is_kept(agent: Account, tmp_path: Path) -> None:
    from workflows.services import archive

    ticket = _decided(agent, _utc(2021, 1))
    other = _decided(agent, _utc(2021, 1, 20))
    result = archive.MonthResult(month="2021-01")
    archive._export(_utc(2021, 1, 1), _utc(2021, 2, 1), tmp_path, result)
    assert result.file is not None and result.tickets == 2
    ticket_note(reference=ticket.reference, actor=agent, body="late note")  # after the export

    archive._drop(result.file, result)

    assert result.kept == [ticket.reference]
    assert (result.dropped_tickets, Ticket.objects.filter(pk=other.pk).exists()) == (1, False)
    assert ticket.events.count() == 4
    assert history_breaks() == {}
