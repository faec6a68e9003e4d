"""Registry upserts (import_members and the API): a batch costs the same queries at any size."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.models import Coverage, Member
from members.services.registry import MemberRow, RowError, member_import_rows

pytestmark = pytest.mark.django_db


def _rows(count: int, *, first: int = 0, email: str = "") -> list[tuple[int, MemberRow | RowError]]:
    return [
        (
            n,
            MemberRow(
                line=n,
                member_number=f"{500000000 + first + n}",
                nir="",
                last_name="Lefèvre",
                first_name="Zoë",
                birth_date=datetime.date(1970, 5, 17),
                email=email or f"m{n}@example.org",
                coverages=("health_principal", "retiree"),
            ),
        )
        for n in range(count)
    ]


def _queries(rows: list[tuple[int, MemberRow | RowError]], batch_size: int) -> int:
    # Below SQLite's bound parameters per statement, so one batch is one batch on every backend.
    with CaptureQueriesContext(connection) as ctx:
        report = member_import_rows(rows=rows, batch_size=batch_size)
    assert report.ok
    return sum(
        1 for q in ctx.captured_queries if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))
    )


def test_a_batch_of_new_members_costs_the_same_queries_at_10_rows_as_at_80() -> None:
    small = _queries(_rows(10), batch_size=10)
    large = _queries(_rows(80, first=1000), batch_size=80)
    assert small == large
    assert Member.objects.count() == 90
    assert Coverage.objects.count() == 180


def test_a_batch_of_changed_members_costs_the_same_queries_at_10_rows_as_at_80() -> None:
    member_import_rows(rows=_rows(10), batch_size=10)
    member_import_rows(rows=_rows(80, first=1000), batch_size=80)
    small = _queries(_rows(10, email="new@example.org"), batch_size=10)
    large = _queries(_rows(80, first=1000, email="new@example.org"), batch_size=80)
    assert small == large
    assert Member.objects.filter(email="new@example.org").count() == 90


def test_a_batch_sent_again_unchanged_is_only_read_not_written() -> None:
    member_import_rows(rows=_rows(80), batch_size=80)
    stamps = dict(Member.objects.values_list("member_number", "updated_at"))
    with CaptureQueriesContext(connection) as ctx:
        report = member_import_rows(rows=_rows(80), batch_size=80)
    assert report.imported == 80
    writes = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert dict(Member.objects.values_list("member_number", "updated_at")) == stamps
    assert Coverage.objects.count() == 160


def test_on_postgresql_a_member_another_writer_added_meanwhile_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The array upsert skips a row equal to what is stored; its id is then read back."""
    if connection.vendor != "postgresql":
        pytest.skip("the array upsert is PostgreSQL's path")
    from members.services import registry

    member_import_rows(rows=_rows(3), batch_size=3)
    before = dict(Member.objects.values_list("member_number", "updated_at"))
    # As if the batch's read ran before another writer committed the very same rows.
    monkeypatch.setattr(
        registry, "_PG_STORED", registry._PG_STORED.replace("WHERE ", "WHERE false AND ")
    )
    report = member_import_rows(rows=_rows(3), batch_size=3)
    assert report.ok and report.added == 3
    assert dict(Member.objects.values_list("member_number", "updated_at")) == before
    assert Coverage.objects.count() == 6
