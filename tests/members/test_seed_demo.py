"""`manage.py seed_demo`: staff in their groups and registry members for every path of the tour."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from members.models import Account, Coverage, Member
from members.nir import nir_is_valid
from tickets.models import MatchResult, TicketKind
from workflows.services.matching import registry_check

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings: Any) -> None:
    """seed_demo refuses to run with DEBUG off (tests/members/test_second_factor.py proves it)."""
    settings.DEBUG = True


README_TOUR_MEMBERS = sorted(
    [
        ("100200303", "Nguyễn"),  # the retiree who registers by NIR alone
        ("100200300", "Martin"),
        ("100200301", "Dupont"),
        ("100200302", "Martin"),
        ("100200304", "O'Brien-Łukasz"),
    ]
)


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _snapshot() -> tuple[object, ...]:
    return (
        sorted(Account.objects.values_list("username", "is_staff")),
        sorted(Member.objects.values_list("member_number", "last_name", "first_name", "nir")),
        sorted(Coverage.objects.values_list("member__member_number", "kind")),
        sorted(Group.objects.values_list("name", flat=True)),
    )


def test_it_is_idempotent() -> None:
    seed()
    first = _snapshot()
    seed()
    assert _snapshot() == first
    assert sorted(Account.objects.values_list("username", flat=True)) == ["agent", "supervisor"]
    # The registry members the README's tour names, and no others.
    assert sorted(Member.objects.values_list("member_number", "last_name")) == README_TOUR_MEMBERS


def test_staff_are_in_their_groups_with_the_password_given() -> None:
    seed("--password", "demo pass 2025")
    agent = Account.objects.get(username="agent")
    supervisor = Account.objects.get(username="supervisor")
    assert agent.is_staff and agent.is_active and agent.member_id is None
    assert set(agent.groups.values_list("name", flat=True)) == {"agents"}
    assert "supervisors" in set(supervisor.groups.values_list("name", flat=True))
    assert agent.check_password("demo pass 2025")
    assert agent.has_perm("tickets.decide_ticket")
    assert not agent.has_perm("tickets.take_over_ticket")
    assert supervisor.has_perm("tickets.take_over_ticket")
    assert supervisor.has_perm("tickets.decide_ticket")


def test_running_again_resets_the_staff_password() -> None:
    seed("--password", "first password")
    seed("--password", "second password")
    agent = Account.objects.get(username="agent")
    assert agent.check_password("second password")
    assert not agent.check_password("first password")


def _try(member: Member, **overrides: object) -> str:
    fields: dict[str, object] = {
        "kind": TicketKind.REGISTRATION,
        "member_number": member.member_number,
        "nir": "",
        "last_name": member.last_name,
        "first_name": member.first_name,
        "birth_date": member.birth_date,
    }
    fields.update(overrides)
    return registry_check(**fields).result  # type: ignore[arg-type]


def test_the_demo_members_cover_each_path_of_the_tour() -> None:
    seed()
    members = list(Member.objects.prefetch_related("coverages"))
    results = {m.member_number: _try(m) for m in members}
    assert MatchResult.MATCH in results.values()  # exact match
    assert MatchResult.NOT_ELIGIBLE in results.values()  # a beneficiary
    eligible = next(m for m in members if results[m.member_number] == MatchResult.MATCH)
    assert _try(eligible, last_name=eligible.last_name + "e") == MatchResult.MISMATCH  # a typo
    # A retiree without a member ID: found by NIR alone.
    retirees = [m for m in members if m.nir and "retiree" in {c.kind for c in m.coverages.all()}]
    assert retirees
    assert any(_try(m, member_number="", nir=m.nir) == MatchResult.MATCH for m in retirees)


def test_demo_members_have_valid_data() -> None:
    seed()
    for member in Member.objects.all():
        assert member.birth_date < timezone.localdate()
        assert not member.nir or nir_is_valid(member.nir), member.member_number
        assert member.coverages.exists(), member.member_number
