"""Registry search and the member page on the desk."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client

from members.models import AccountStatus, Coverage, CoverageKind
from tests.factories import MemberAccountFactory, MemberFactory, TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


def _search(client: Client, query: str) -> str:
    response = client.get("/desk/members/", {"q": query})
    assert response.status_code == 200
    return response.content.decode()


def test_search_by_name_ignores_accents_and_case_and_matches_prefixes(
    agent_client: Client,
) -> None:
    lefevre = MemberFactory(last_name="Lefèvre", first_name="Zoë")
    other = MemberFactory(last_name="Martin")
    page = _search(agent_client, "LEFEV")
    assert lefevre.member_number in page and other.member_number not in page
    assert lefevre.member_number in _search(agent_client, "lefevre, zo")
    assert lefevre.member_number not in _search(agent_client, "lefevre, jean")


def test_search_by_member_id_nir_and_email(agent_client: Client) -> None:
    member = MemberFactory(member_number="765432109", nir="180047512345661")
    assert member.member_number in _search(agent_client, "765432109")
    assert member.member_number in _search(agent_client, "1 80 04 75 123 456 61")
    assert member.member_number in _search(agent_client, member.email.upper())


def test_empty_or_odd_searches_do_not_fail(agent_client: Client) -> None:
    assert "No member found." in _search(agent_client, "'--")
    assert "No member found" not in _search(agent_client, "")
    assert agent_client.get("/desk/members/", {"q": "x" * 500}).status_code == 200


def test_member_page_shows_coverages_eligibility_account_and_tickets(
    agent_client: Client,
) -> None:
    account = MemberAccountFactory()
    member = account.member
    Coverage.objects.create(member=member, kind=CoverageKind.RETIREE, end=datetime.date(2001, 1, 1))
    ticket = TicketFactory(member=member)
    account.status = AccountStatus.CLOSED
    account.save()
    page = agent_client.get(f"/desk/members/{member.member_number}/").content.decode()
    assert "Principal insured (health)" in page and "Retiree receiving" in page
    assert "eligible</strong> — holds an eligible coverage" in page
    assert "Closed" in page
    assert ticket.reference in page


def test_a_member_without_account(agent_client: Client) -> None:
    member = MemberFactory(coverages=[])
    page = agent_client.get(f"/desk/members/{member.member_number}/").content.decode()
    assert "not eligible</strong> — no coverage in force" in page
    assert "No ticket." in page
