"""`field__any_of=`: the rows of `field__in=`, sent on PostgreSQL as one array parameter."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import Q

from members.models import Member
from tests.factories import MemberFactory, TicketFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def members() -> list[Member]:
    return [MemberFactory() for _ in range(5)]


def _sent(run: Any) -> list[tuple[str, int]]:
    """The statements `run` sent, each with its number of parameters."""
    sent: list[tuple[str, int]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        run()
    return sent


def test_ids_select_the_same_rows_as_in(members: list[Member]) -> None:
    wanted = [members[0].pk, members[3].pk, 10**12]
    found = set(Member.objects.filter(pk__any_of=wanted).values_list("pk", flat=True))
    assert found == {members[0].pk, members[3].pk}


def test_member_numbers_select_the_same_rows_as_in(members: list[Member]) -> None:
    wanted = [members[1].member_number, members[4].member_number, "absent"]
    found = set(Member.objects.filter(member_number__any_of=wanted).values_list("pk", flat=True))
    assert found == {members[1].pk, members[4].pk}


def test_a_foreign_key_and_an_or_select_the_same_rows_as_in(members: list[Member]) -> None:
    tickets = [TicketFactory(member=m) for m in members]
    ids = [members[0].pk, members[2].pk]
    numbers = [tickets[4].submitted_member_number]
    with_any = Q(member_id__any_of=ids) | Q(submitted_member_number__any_of=numbers)
    with_in = Q(member_id__in=ids) | Q(submitted_member_number__in=numbers)
    assert set(Ticket.objects.filter(with_any)) == set(Ticket.objects.filter(with_in))
    assert len(Ticket.objects.filter(with_any)) >= 2


@pytest.mark.parametrize("hostile", ["a,b", "x'); DROP TABLE members_member; --", '"}', "é9"])
def test_a_value_that_would_need_quoting_falls_back_to_in(
    members: list[Member], hostile: str
) -> None:
    wanted = [members[0].member_number, hostile]
    found = list(Member.objects.filter(member_number__any_of=wanted).values_list("pk", flat=True))
    assert found == [members[0].pk]


def test_a_thousand_values_are_one_parameter_on_postgresql(members: list[Member]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the array parameter is PostgreSQL's; elsewhere the lookup is IN")
    wanted = [m.pk for m in members] + list(range(10**9, 10**9 + 1000))
    ((sql, parameters),) = _sent(lambda: Member.objects.filter(pk__any_of=wanted).count())
    assert "= ANY(" in sql
    assert parameters == 1  # not a thousand placeholders


def test_an_empty_list_matches_nothing(members: list[Member]) -> None:
    assert not Member.objects.filter(pk__any_of=[]).exists()
