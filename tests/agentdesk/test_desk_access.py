"""The minimal desk: who reaches it, its query cost, and what the ticket page shows and offers."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from members.models import Account, Member
from tests.factories import MemberFactory, StaffFactory, TicketFactory
from tests.requests import intake_request
from tests.second_factor import fresh_code, staff_login
from tickets.models import EventKind, RejectionReason, Ticket, TicketState
from tickets.services import ticket_claim, ticket_note
from workflows.services.decisions import ticket_reject

pytestmark = pytest.mark.django_db


@pytest.fixture
def member() -> Member:
    return MemberFactory(
        member_number="400000001",
        last_name="Martin",
        first_name="Zoë",
        birth_date=datetime.date(1980, 4, 12),
    )


def _submit(member: Member, **overrides: Any) -> Ticket:
    return intake_request(member, **overrides)


# --- who reaches the desk --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/desk/", "/desk/tickets/REG-ABCDEFGH/"])
def test_anonymous_visitors_are_sent_to_the_desk_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/desk/login/")


def test_anonymous_actions_change_nothing(client: Client, member: Member) -> None:
    ticket = _submit(member)
    response = client.post(f"/desk/tickets/{ticket.reference}/confirm/")
    assert response.status_code == 302 and response["Location"].startswith("/desk/login/")
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING


def test_members_get_403_everywhere_on_the_desk(member_client: Client, member: Member) -> None:
    ticket = _submit(member)
    events_before = ticket.events.count()
    assert member_client.get("/desk/").status_code == 403
    assert member_client.get(f"/desk/tickets/{ticket.reference}/").status_code == 403
    for action in ("claim", "confirm", "reject", "flag-mismatch", "note"):
        response = member_client.post(
            f"/desk/tickets/{ticket.reference}/{action}/", {"reason": "other", "body": "x"}
        )
        assert response.status_code == 403, action
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING
    assert ticket.events.count() == events_before


def test_agents_reach_the_queue_and_the_ticket(agent_client: Client, member: Member) -> None:
    ticket = _submit(member)
    queue = agent_client.get("/desk/")
    assert queue.status_code == 200
    assert ticket.reference in queue.content.decode()
    page = agent_client.get(f"/desk/tickets/{ticket.reference}/")
    assert page.status_code == 200
    assert ticket.reference in page.content.decode()


def test_an_unknown_or_malformed_ticket_is_404(agent_client: Client) -> None:
    assert agent_client.get("/desk/tickets/REG-ABCDEFGH/").status_code == 404
    assert agent_client.get("/desk/tickets/<script>/").status_code == 404
    assert agent_client.post("/desk/tickets/REG-ABCDEFGH/claim/").status_code == 404


def test_the_desk_login_takes_staff_only(client: Client, member_account: Account) -> None:
    StaffFactory(username="carol", password="staff password 123")
    response = client.post(
        "/desk/login/",
        {"username": member_account.username, "password": "a long member passphrase"},
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    response = client.post(
        "/desk/login/?next=/desk/tickets/REG-ABCDEFGH/",
        {"username": "carol", "password": "staff password 123"},
    )
    # The password alone leads to the second-factor step, which then leads where asked.
    assert response.status_code == 302
    assert response["Location"] == "/desk/second-factor/?next=%2Fdesk%2Ftickets%2FREG-ABCDEFGH%2F"
    carol = Account.objects.get(username="carol")
    response = client.post(response["Location"], {"otp_token": fresh_code(carol)})
    assert response["Location"] == "/desk/tickets/REG-ABCDEFGH/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/desk/", "/account/"])
def test_the_desk_login_never_redirects_off_the_desk(client: Client, target: str) -> None:
    StaffFactory(username="carol", password="staff password 123")
    response = client.post(
        f"/desk/login/?next={target}", {"username": "carol", "password": "staff password 123"}
    )
    assert response["Location"] == "/desk/second-factor/?next=%2Fdesk%2F"
    carol = Account.objects.get(username="carol")
    step = f"/desk/second-factor/?next={target}"
    assert client.post(step, {"otp_token": fresh_code(carol)})["Location"] == "/desk/"


# --- query cost ------------------------------------------------------------------------------


def _queue_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/desk/")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_queue_costs_the_same_queries_for_10_or_40_tickets(
    agent_client: Client, agent: Account, second_agent: Account
) -> None:
    def add(count: int, offset: int) -> None:
        for n in range(offset, offset + count):
            ticket = TicketFactory(member=MemberFactory(member_number=f"41{n:07d}"))
            if n % 2:
                ticket_claim(reference=ticket.reference, actor=agent if n % 4 else second_agent)

    add(10, 0)
    agent_client.get("/desk/")  # warm per-process caches (content types, permissions)
    with_10 = _queue_queries(agent_client)
    add(30, 10)
    with_40 = _queue_queries(agent_client)
    assert with_10 == with_40
    assert with_40 <= 12


def test_the_ticket_page_costs_the_same_for_a_short_or_long_history(
    agent_client: Client, agent: Account, member: Member
) -> None:
    ticket = _submit(member, last_name="Martn")
    agent_client.get(f"/desk/tickets/{ticket.reference}/")
    with CaptureQueriesContext(connection) as short:
        agent_client.get(f"/desk/tickets/{ticket.reference}/")
    for n in range(20):
        ticket_note(reference=ticket.reference, actor=agent, body=f"note {n}")
    with CaptureQueriesContext(connection) as long:
        agent_client.get(f"/desk/tickets/{ticket.reference}/")
    assert len(short.captured_queries) == len(long.captured_queries)


# --- the ticket page -------------------------------------------------------------------------


def test_the_differing_characters_are_highlighted(agent_client: Client, member: Member) -> None:
    ticket = _submit(member, last_name="Martn", first_name="Zoë")
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    # Registry "Martin" beside typed "Martn": the missing "i" is marked on the registry side.
    assert "Mart<mark>i</mark>n" in html
    assert "Martn" in html
    # The first names agree: nothing is marked in them.
    assert "<mark>Z" not in html and "<mark>o" not in html


def test_a_substituted_letter_is_marked_on_both_sides(agent_client: Client, member: Member) -> None:
    ticket = _submit(member, last_name="Martan")
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "Mart<mark>a</mark>n" in html
    assert "Mart<mark>i</mark>n" in html


def test_typed_markup_is_escaped_on_the_desk(agent_client: Client) -> None:
    ticket = TicketFactory(member=None, submitted_last_name="<script>alert(1)</script>")
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def _action_urls(html: str, reference: str) -> set[str]:
    return {
        action
        for action in ("confirm", "reject", "flag-mismatch")
        if f"/desk/tickets/{reference}/{action}/" in html
    }


def test_a_pending_ticket_offers_confirm_reject_and_flag(
    agent_client: Client, member: Member
) -> None:
    ticket = _submit(member)
    assert ticket.state == TicketState.PENDING
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert _action_urls(html, ticket.reference) == {"confirm", "reject", "flag-mismatch"}


def test_a_mismatch_ticket_offers_no_flag(agent_client: Client, member: Member) -> None:
    ticket = _submit(member, last_name="Martn")
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert _action_urls(html, ticket.reference) == {"confirm", "reject"}


def test_a_decided_ticket_offers_no_decision(
    agent_client: Client, agent: Account, member: Member
) -> None:
    ticket = _submit(member)
    ticket_reject(reference=ticket.reference, actor=agent, reason=RejectionReason.DUPLICATE)
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert _action_urls(html, ticket.reference) == set()


def test_an_unknown_person_cannot_be_confirmed(agent_client: Client) -> None:
    ticket = _submit(MemberFactory.build(member_number="499999999"))
    assert ticket.member is None
    html = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert _action_urls(html, ticket.reference) == {"reject"}


def test_staff_outside_the_agents_group_see_no_decision(client: Client, member: Member) -> None:
    ticket = _submit(member)
    staff_login(client, StaffFactory(groups=[]))
    response = client.get(f"/desk/tickets/{ticket.reference}/")
    if response.status_code == 200:
        assert _action_urls(response.content.decode(), ticket.reference) == set()
    else:
        assert response.status_code == 403
    client.post(f"/desk/tickets/{ticket.reference}/confirm/")
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING


def test_a_desk_confirmation_goes_through_the_workflow(
    agent_client: Client, member: Member, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _submit(member)
    with django_capture_on_commit_callbacks(execute=False):
        response = agent_client.post(f"/desk/tickets/{ticket.reference}/confirm/")
    assert response.status_code == 302
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.CONFIRMED
    assert Account.objects.filter(username="400000001").exists()


def test_a_refused_desk_action_is_a_message_not_an_error(
    agent_client: Client, second_agent: Account, member: Member
) -> None:
    ticket = _submit(member)
    ticket_claim(reference=ticket.reference, actor=second_agent)
    response = agent_client.post(
        f"/desk/tickets/{ticket.reference}/confirm/", follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "Another agent has claimed this ticket" in response.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING
    assert ticket.events.filter(kind=EventKind.REFUSED, reason="claimed_by_other").exists()


def test_a_bad_reject_reason_is_refused_cleanly(agent_client: Client, member: Member) -> None:
    ticket = _submit(member)
    response = agent_client.post(
        f"/desk/tickets/{ticket.reference}/reject/", {"reason": "expired"}, follow=True
    )
    assert response.status_code == 200
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING
