"""Who may do what on the desk: anonymous, member, agent, another agent, supervisor."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from members.models import Account
from tests.factories import TicketFactory
from tests.second_factor import staff_login
from tickets.models import EventKind, Ticket, TicketState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def ticket() -> Ticket:
    return TicketFactory()


def _client(account: Account | None) -> Client:
    client = Client()
    if account is not None:
        staff_login(client, account)
    return client


def _pages(ticket: Ticket) -> list[str]:
    return [
        "/desk/",
        "/desk/?queue=mismatch",
        f"/desk/tickets/{ticket.reference}/",
        "/desk/tickets/new/",
        "/desk/members/?q=martin",
        f"/desk/members/{ticket.member.member_number}/",
    ]


ACTIONS = ["claim", "release", "confirm", "reject", "flag-mismatch", "note"]


def test_anonymous_is_sent_to_the_desk_login(ticket: Ticket) -> None:
    client = _client(None)
    for url in _pages(ticket):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/desk/login/?next=")
    for action in ACTIONS:
        response = client.post(f"/desk/tickets/{ticket.reference}/{action}/")
        assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.state == TicketState.PENDING


def test_a_member_gets_403_everywhere(ticket: Ticket, member_account: Account) -> None:
    client = _client(member_account)
    for url in _pages(ticket):
        assert client.get(url).status_code == 403, url
    for action in ACTIONS:
        assert client.post(f"/desk/tickets/{ticket.reference}/{action}/").status_code == 403
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.state == TicketState.PENDING


def test_an_agent_sees_every_page(ticket: Ticket, agent: Account) -> None:
    client = _client(agent)
    for url in _pages(ticket):
        assert client.get(url).status_code == 200, url


def test_actions_are_post_only(ticket: Ticket, agent_client: Client) -> None:
    for action in ACTIONS:
        assert agent_client.get(f"/desk/tickets/{ticket.reference}/{action}/").status_code == 405


def test_unknown_tickets_actions_and_members_are_404(agent_client: Client) -> None:
    assert agent_client.get("/desk/tickets/REG-00000000/").status_code == 404
    assert agent_client.get("/desk/tickets/%3Cscript%3E/").status_code == 404
    assert agent_client.post("/desk/tickets/REG-00000000/claim/").status_code == 404
    assert agent_client.get("/desk/members/000/").status_code == 404
    ticket = TicketFactory()
    assert agent_client.post(f"/desk/tickets/{ticket.reference}/explode/").status_code == 404


def test_another_agents_claim_blocks_decisions_with_a_clear_message(
    ticket: Ticket, agent: Account, second_agent: Account
) -> None:
    owner, other = _client(agent), _client(second_agent)
    assert owner.post(f"/desk/tickets/{ticket.reference}/claim/").status_code == 302
    page = other.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "Claimed by alice" in page
    assert "/confirm/" not in page and "/reject/" not in page and "/claim/" not in page
    for action, data in (
        ("confirm", {}),
        ("reject", {"reason": "duplicate"}),
        ("flag-mismatch", {}),
        ("claim", {}),
        ("release", {}),
    ):
        response = other.post(f"/desk/tickets/{ticket.reference}/{action}/", data, follow=True)
        assert response.status_code == 200
        assert "Another agent has claimed this ticket" in response.content.decode(), action
    ticket.refresh_from_db()
    assert ticket.assignee == agent and ticket.state == TicketState.PENDING
    refused = ticket.events.filter(kind=EventKind.REFUSED, actor=second_agent)
    assert refused.count() == 5


def test_another_agent_may_still_add_a_note(
    ticket: Ticket, agent: Account, second_agent: Account
) -> None:
    _client(agent).post(f"/desk/tickets/{ticket.reference}/claim/")
    _client(second_agent).post(f"/desk/tickets/{ticket.reference}/note/", {"body": "Called her"})
    assert ticket.events.filter(kind=EventKind.NOTE, actor=second_agent).exists()


def test_a_supervisor_takes_over_and_decides(
    ticket: Ticket, agent: Account, supervisor: Account
) -> None:
    _client(agent).post(f"/desk/tickets/{ticket.reference}/claim/")
    boss = _client(supervisor)
    page = boss.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "Take over" in page and "/reject/" in page
    boss.post(f"/desk/tickets/{ticket.reference}/claim/")
    ticket.refresh_from_db()
    assert ticket.assignee == supervisor
    response = boss.post(
        f"/desk/tickets/{ticket.reference}/reject/", {"reason": "duplicate"}, follow=True
    )
    assert "Rejected" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.REJECTED and ticket.decided_by == supervisor


def test_staff_outside_the_desk_groups_see_nothing_and_cannot_decide(ticket: Ticket) -> None:
    from tests.factories import StaffFactory

    clerk = StaffFactory(username="clerk", groups=[])
    client = _client(clerk)
    assert client.get("/desk/").status_code == 403
    page = client.get(f"/desk/tickets/{ticket.reference}/")
    assert page.status_code == 403
    assert ticket.submitted_last_name not in page.content.decode()
    response = client.post(f"/desk/tickets/{ticket.reference}/reject/", {"reason": "duplicate"})
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.state == TicketState.PENDING
