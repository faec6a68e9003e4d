"""An agent records a request received by letter, phone or e-mail; it follows the workflow."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import EventKind, Ticket, TicketKind, TicketState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


def _data(**overrides: str) -> dict[str, str]:
    return {
        "kind": TicketKind.REGISTRATION,
        "channel": "letter",
        "member_number": "500000123",
        "last_name": "Martin",
        "first_name": "Zoë",
        "birth_date": "12/04/1980",
        "email": "zoe@example.org",
        "message": "Letter of 3 March",
        "note": "Scanned letter in the GED",
        **overrides,
    }


def test_a_letter_becomes_a_checked_ticket_with_channel_and_note(
    agent_client: Client, agent: Account, django_capture_on_commit_callbacks
) -> None:
    MemberFactory(member_number="500000123")
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post("/desk/tickets/new/", _data())
    ticket = Ticket.objects.get()
    assert response["Location"] == f"/desk/tickets/{ticket.reference}/"
    assert ticket.channel == "letter" and ticket.created_by == agent
    assert ticket.match_result == "match" and ticket.state == TicketState.PENDING
    assert ticket.events.filter(kind=EventKind.NOTE, body="Scanned letter in the GED").exists()
    assert [m.to for m in mail.outbox] == [["zoe@example.org"]]  # the acknowledgment


def test_a_phoned_recovery_with_a_typo_goes_to_mismatch(agent_client: Client) -> None:
    account = MemberAccountFactory()
    agent_client.post(
        "/desk/tickets/new/",
        _data(
            kind=TicketKind.RECOVERY,
            channel="phone",
            member_number=account.member.member_number,
            last_name="Martinn",
            note="",
        ),
    )
    ticket = Ticket.objects.get()
    assert ticket.kind == TicketKind.RECOVERY and ticket.channel == "phone"
    assert ticket.state == TicketState.IDENTITY_MISMATCH
    assert not ticket.events.filter(kind=EventKind.NOTE).exists()


def test_every_kind_can_be_recorded(agent_client: Client) -> None:
    for kind in TicketKind.values:
        agent_client.post("/desk/tickets/new/", _data(kind=kind, requested_email="new@example.org"))
    assert sorted(Ticket.objects.values_list("kind", flat=True)) == sorted(TicketKind.values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"member_number": "", "nir": ""}, "Give the member ID or the social-security number."),
        ({"channel": "web"}, 'id="id_channel_error"'),
        ({"kind": TicketKind.EMAIL_CHANGE}, "An e-mail change needs the new address."),
        ({"nir": "1800475123456"}, 'id="id_nir_error"'),
        ({"last_name": "<script>"}, "Use only letters"),
        ({"birth_date": "31/02/1980"}, "Enter a real date"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    agent_client: Client, overrides: dict[str, str], message: str
) -> None:
    response = agent_client.post("/desk/tickets/new/", _data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Ticket.objects.exists()
