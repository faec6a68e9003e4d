"""`bulk_values`: a long list for `field__in=` as one parameter, the same rows as the list."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from core.bulk_values import bulk_values
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def members() -> list[Member]:
    return [MemberFactory() for _ in range(5)]


def test_ids_select_the_same_rows_as_the_plain_list(members: list[Member]) -> None:
    wanted = [members[0].pk, members[3].pk, 10**12]
    found = set(Member.objects.filter(pk__in=bulk_values(wanted)).values_list("pk", flat=True))
    assert found == {members[0].pk, members[3].pk}


def test_keys_select_the_same_rows_as_the_plain_list(members: list[Member]) -> None:
    wanted = [members[1].member_number, members[4].member_number, "absent"]
    found = set(
        Member.objects.filter(member_number__in=bulk_values(wanted)).values_list("pk", flat=True)
    )
    assert found == {members[1].pk, members[4].pk}


def test_a_thousand_values_are_one_parameter_on_postgresql(members: list[Member]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the JSON parameter is PostgreSQL's path; elsewhere the list is used")
    wanted = [m.pk for m in members] + list(range(10**9, 10**9 + 1000))
    sent: list[tuple[str, int]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert Member.objects.filter(pk__in=bulk_values(wanted)).count() == len(members)
    ((sql, parameters),) = sent
    assert "json_array_elements_text" in sql
    assert parameters == 1  # not a thousand placeholders


def test_an_empty_list_matches_nothing(members: list[Member]) -> None:
    assert not Member.objects.filter(pk__in=bulk_values([])).exists()


def test_mixed_types_are_refused_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("elsewhere the list goes to Django as it is")
    with pytest.raises(TypeError, match="only ints or only strs"):
        bulk_values([1, "2"])  # type: ignore[list-item]
