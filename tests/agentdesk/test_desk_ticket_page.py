"""The ticket page: typed beside registry, verdicts, history, and only the allowed actions."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from members.models import CoverageKind
from tests.factories import MemberAccountFactory, MemberFactory, TicketFactory
from tickets.models import EventKind, Ticket, TicketKind, TicketState
from tickets.services import event_record
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


def _page(client: Client, ticket: Ticket) -> str:
    response = client.get(f"/desk/tickets/{ticket.reference}/")
    assert response.status_code == 200
    return response.content.decode()


def test_differing_characters_are_highlighted_with_a_closeness(agent_client: Client) -> None:
    member = MemberFactory(last_name="Lefèvre", first_name="Zoë")
    ticket = TicketFactory(member=member, submitted_last_name="Lefevbre", match_result="mismatch")
    page = _page(agent_client, ticket)
    assert "Lef<mark>e</mark>v<mark>b</mark>re" in page
    assert "Lef<mark>è</mark>vre" in page
    assert "0,93" in page or "0.93" in page  # closeness of lefevbre / lefevre
    assert "differs" in page


def test_eligibility_verdict_with_reason_and_account_status(agent_client: Client) -> None:
    beneficiary = MemberFactory(coverages=[CoverageKind.HEALTH_BENEFICIARY])
    page = _page(agent_client, TicketFactory(member=beneficiary))
    assert "not eligible" in page and "beneficiary only" in page
    account = MemberAccountFactory()
    page = _page(agent_client, TicketFactory(member=account.member, kind=TicketKind.RECOVERY))
    assert "eligible</strong> — holds an eligible coverage" in page
    assert "Client-area account</dt>\n  <dd>Active" in page


def test_the_members_other_tickets_are_listed(agent_client: Client) -> None:
    member = MemberFactory()
    ticket, earlier = TicketFactory(member=member), TicketFactory(member=member)
    unrelated = TicketFactory()
    page = _page(agent_client, ticket)
    assert earlier.reference in page and unrelated.reference not in page


def test_history_shows_notes_transitions_and_emails_with_delivery(agent_client: Client) -> None:
    ticket = TicketFactory()
    event_record(ticket=ticket, kind=EventKind.NOTE, body="Phoned the member")
    OutboxMessage.objects.create(
        ticket=ticket,
        template=EmailTemplate.ACKNOWLEDGMENT,
        recipient="typed@example.org",
        status=OutboxStatus.SENT,
    )
    OutboxMessage.objects.create(
        ticket=ticket,
        template=EmailTemplate.REJECTION,
        recipient="typed@example.org",
        status=OutboxStatus.FAILED,
        attempts=8,
        last_error="SMTPRecipientsRefused: 550",
    )
    page = _page(agent_client, ticket)
    assert "Phoned the member" in page
    assert "Accepted by the mail server" in page
    assert "Failed permanently" in page and "8 attempts" in page and "550" in page


def test_actions_follow_the_state_machine(agent_client: Client) -> None:
    pending = TicketFactory()
    page = _page(agent_client, pending)
    assert all(f"/{a}/" in page for a in ("confirm", "reject", "flag-mismatch", "claim"))
    mismatch = TicketFactory()
    Ticket.objects.filter(pk=mismatch.pk).update(state=TicketState.IDENTITY_MISMATCH)
    page = _page(agent_client, mismatch)
    assert "/confirm/" in page and "/reject/" in page and "/flag-mismatch/" not in page
    unknown = TicketFactory(member=None, match_result="not_found")
    page = _page(agent_client, unknown)
    assert "/confirm/" not in page and "/reject/" in page
    assert "No registry member matches" in page
    decided = TicketFactory()
    Ticket.objects.filter(pk=decided.pk).update(state=TicketState.CONFIRMED)
    page = _page(agent_client, decided)
    assert not any(f"/{a}/" in page for a in ("confirm", "reject", "flag-mismatch", "claim"))


def test_reject_needs_a_reason_code(agent_client: Client) -> None:
    ticket = TicketFactory()
    response = agent_client.post(
        f"/desk/tickets/{ticket.reference}/reject/", {"reason": ""}, follow=True
    )
    assert "Choose a reason from the list." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.PENDING


def test_reject_with_reason_and_comment_tells_the_member(
    agent_client: Client, django_capture_on_commit_callbacks
) -> None:
    ticket = TicketFactory()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            f"/desk/tickets/{ticket.reference}/reject/",
            {"reason": "suspected_fraud", "comment": "Birth date differs"},
        )
    ticket.refresh_from_db()
    assert ticket.state == TicketState.REJECTED and ticket.rejection_reason == "suspected_fraud"
    event = ticket.events.get(kind=EventKind.TRANSITION, to_state=TicketState.REJECTED)
    assert event.reason == "suspected_fraud" and event.body == "Birth date differs"
    assert [m.to for m in mail.outbox] == [["typed@example.org"]]
    assert ticket.reference in mail.outbox[0].subject + mail.outbox[0].body


def test_confirm_then_a_second_confirm_is_refused_clearly(agent_client: Client) -> None:
    ticket = TicketFactory()
    agent_client.post(f"/desk/tickets/{ticket.reference}/confirm/")
    response = agent_client.post(f"/desk/tickets/{ticket.reference}/confirm/", follow=True)
    assert response.status_code == 200
    assert "already been decided" in response.content.decode()


def test_an_empty_note_is_refused_and_a_note_is_kept(agent_client: Client) -> None:
    ticket = TicketFactory()
    response = agent_client.post(f"/desk/tickets/{ticket.reference}/note/", {}, follow=True)
    assert "A note cannot be empty." in response.content.decode()
    agent_client.post(f"/desk/tickets/{ticket.reference}/note/", {"body": "<b>checked</b>"})
    page = _page(agent_client, ticket)
    assert "&lt;b&gt;checked&lt;/b&gt;" in page


def test_swapped_names_are_pointed_out(agent_client: Client) -> None:
    member = MemberFactory(last_name="Martin", first_name="Zoë")
    ticket = TicketFactory(
        member=member,
        submitted_last_name="Zoë",
        submitted_first_name="Martin",
        match_result="mismatch",
        match_details={"comparison": {"names_swapped": True}},
        submitted_birth_date=datetime.date(1980, 4, 12),
    )
    assert "last and first names look swapped" in _page(agent_client, ticket)
