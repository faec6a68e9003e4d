"""Concurrent registry batches over the same members: both succeed, nothing half-written.

A registry feed may send several batches at a time (docs/benchmarks.md: that is how it reaches
20,000 rows/s); a member may be in two of them. Each batch locks the stored members it reads,
in member-number order, and writes new members in that order: two batches never deadlock, and
the later one reads what the earlier one committed (no duplicate coverage).
"""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection

from members.models import Coverage, Member
from members.services.registry import MemberRow, RowError
from tests.factories import MemberFactory
from tests.requests import intake_request
from workflows.services.registry_recheck import registry_import

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 20


def _rows(
    members: list[Member], numbers: list[str], *, kind: str, last_name: str
) -> list[tuple[int, MemberRow | RowError]]:
    known = {m.member_number: m for m in members}
    rows: list[tuple[int, MemberRow | RowError]] = []
    for line, number in enumerate(numbers):
        member = known.get(number)
        rows.append(
            (
                line,
                MemberRow(
                    line=line,
                    member_number=number,
                    nir=member.nir if member else "",
                    last_name=last_name,
                    first_name=member.first_name if member else "Zoë",
                    birth_date=member.birth_date if member else datetime.date(1970, 5, 17),
                    email=f"{last_name.lower()}.{number}@example.org",
                    coverages=(kind,),
                ),
            )
        )
    return rows


def test_two_feeds_writing_the_same_members_in_opposite_orders_both_succeed() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    members = [MemberFactory() for _ in range(300)]
    for member in members[:10]:
        intake_request(member)  # open requests: the re-check locks and reads them too
    numbers = sorted(m.member_number for m in members) + [f"9{n:08d}" for n in range(30)]
    feeds = {
        "ascending": (numbers, "retiree", "Durand"),
        "descending": (numbers[::-1], "provident_employee", "Martin"),
    }
    start = threading.Barrier(len(feeds))
    failures: list[BaseException] = []

    def feed(name: str) -> None:
        order, kind, last_name = feeds[name]
        try:
            start.wait()
            for _ in range(ROUNDS):
                run = registry_import(
                    rows=_rows(members, order, kind=kind, last_name=last_name),
                    source=f"test:{name}",
                    batch_size=len(order),
                )
                assert run.report.ok, run.report.rejected
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=feed, args=(name,)) for name in feeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    # Every member ends with exactly one coverage, the one of the feed that wrote it last.
    held = {}
    for member_id, kind in Coverage.objects.values_list("member_id", "kind"):
        assert member_id not in held, f"member {member_id} holds two coverages"
        held[member_id] = kind
    stored = Member.objects.filter(member_number__in=numbers)
    assert stored.count() == len(numbers)
    for member in stored:
        expected = {"Durand": "retiree", "Martin": "provident_employee"}[member.last_name]
        assert held[member.pk] == expected
