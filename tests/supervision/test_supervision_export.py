"""CSV exports: streamed with a bounded chunk, header row, filters in the file name, safe cells."""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models.query import QuerySet
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from members.models import Account
from supervision import exports
from tests.factories import StaffFactory, TicketFactory
from tests.second_factor import staff_login
from tickets.services import ticket_claim, ticket_note

pytestmark = pytest.mark.django_db


def _rows(response: StreamingHttpResponse) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_queue_export_streams_a_header_and_the_filtered_rows(
    supervisor_client: Client,
) -> None:
    rec = TicketFactory(kind="REC")
    TicketFactory(kind="REG")
    response = supervisor_client.get("/desk/supervisor/export/queue.csv?kind=REC")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="queue_queue-open_kind-REC_')
    rows = _rows(response)
    assert rows[0] == [header for header, _path in exports.QUEUE_COLUMNS]
    assert [row[0] for row in rows[1:]] == [rec.reference]


def test_exports_carry_no_personal_data(supervisor_client: Client) -> None:
    ticket = TicketFactory(submitted_email="secret.person@example.org")
    body = b"".join(
        supervisor_client.get("/desk/supervisor/export/queue.csv?queue=all").streaming_content
    ).decode()
    assert ticket.reference in body
    for private in (
        ticket.submitted_email,
        ticket.submitted_last_name,
        ticket.member.member_number,
    ):
        assert private not in body


def test_cells_that_a_spreadsheet_would_run_are_defused(
    supervisor_client: Client, supervisor: Account
) -> None:
    evil = Account.objects.create(username="=HYPERLINK(1)", is_staff=True)
    TicketFactory(assignee=evil)
    rows = _rows(supervisor_client.get("/desk/supervisor/export/queue.csv"))
    assert rows[1][6] == "'=HYPERLINK(1)"


def test_the_export_reads_nothing_until_streamed_then_reads_in_bounded_keyset_chunks(
    supervisor_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(7):
        TicketFactory()
    monkeypatch.setattr(exports, "CHUNK_SIZE", 3)

    def no_iterator(self: QuerySet[Any], chunk_size: int | None = None) -> Any:
        raise AssertionError("a server-side cursor (QuerySet.iterator) was used")

    monkeypatch.setattr(QuerySet, "iterator", no_iterator)
    with CaptureQueriesContext(connection) as before:
        response = supervisor_client.get("/desk/supervisor/export/queue.csv?queue=all")
    assert not any("tickets_ticket" in q["sql"] for q in before.captured_queries)
    with CaptureQueriesContext(connection) as during:
        rows = _rows(response)
    assert len(rows) == 1 + 7
    chunks = [q["sql"] for q in during.captured_queries if 'FROM "tickets_ticket"' in q["sql"]]
    assert len(chunks) == 3  # 3 + 3 + 1 rows
    assert all("LIMIT 3" in sql for sql in chunks)
    assert '"tickets_ticket"."created_at" >=' in chunks[1]  # the next chunk starts after the last


def test_the_audit_export_filters_by_agent_and_action(
    supervisor_client: Client, agent: Account, second_agent: Account
) -> None:
    one, two = TicketFactory(), TicketFactory()
    ticket_claim(reference=one.reference, actor=agent)
    ticket_note(reference=one.reference, actor=agent, body="private words")
    ticket_claim(reference=two.reference, actor=second_agent)
    response = supervisor_client.get("/desk/supervisor/export/audit.csv?actor=alice&action=claim")
    assert 'filename="audit_actor-alice_action-claim_' in response["Content-Disposition"]
    rows = _rows(response)
    assert rows[0] == [header for header, _path in exports.AUDIT_COLUMNS]
    assert [(r[2], r[4], r[7]) for r in rows[1:]] == [(one.reference, "claim", "alice")]
    assert "private words" not in str(rows)


def test_the_audit_view_filters_and_pages(supervisor_client: Client, agent: Account) -> None:
    ticket = TicketFactory(kind="CLO")
    ticket_claim(reference=ticket.reference, actor=agent)
    response = supervisor_client.get("/desk/supervisor/audit/?ticket_kind=CLO&actor=alice")
    assert ticket.reference in response.content.decode()
    response = supervisor_client.get("/desk/supervisor/audit/?ticket_kind=REG")
    assert ticket.reference not in response.content.decode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_through_pgbouncer_the_export_streams_every_row_once_without_a_server_side_cursor(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        reason = "needs DATABASE_URL on PostgreSQL and REDIS_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    request.getfixturevalue("pgbouncer")  # this test's connections go through PgBouncer
    references = {TicketFactory().reference for _ in range(25)}
    client = Client()
    staff_login(client, StaffFactory(groups=["supervisors", "agents"]))
    monkeypatch.setattr(exports, "CHUNK_SIZE", 10)
    response = client.get("/desk/supervisor/export/queue.csv?queue=all")
    stream = iter(response.streaming_content)
    header, first = next(stream), next(stream)
    assert header.startswith(b"reference,") and first
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        assert cursor.fetchone() == (0,)  # no named cursor held between chunks
    TicketFactory()  # another client's write between two chunks, on a pooled session
    rows = list(csv.reader(io.StringIO((first + b"".join(stream)).decode())))
    exported = [row[0] for row in rows]
    assert len(exported) == len(set(exported)) and references <= set(exported)
