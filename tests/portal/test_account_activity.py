"""/account/activity/: the member sees their file's story, decisions by role, never by name."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import AccessJournalEntry, AccessKind, Account
from members.services.access_journal import access_record
from tests.factories import TicketFactory
from tickets.models import Ticket, TicketState
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def test_activity_lists_requests_decisions_by_role_emails_and_staff_looks(
    member_client: Client, member_account: Account, agent: Account, stranger: Account
) -> None:
    mine = TicketFactory(member=member_account.member)
    Ticket.objects.filter(pk=mine.pk).update(
        state=TicketState.CONFIRMED, decided_by=agent, decided_at=timezone.now()
    )
    theirs = TicketFactory(member=stranger.member)
    OutboxMessage.objects.create(
        ticket=mine,
        template=EmailTemplate.ACKNOWLEDGMENT,
        recipient="a@example.org",
        status=OutboxStatus.SENT,
        sent_at=timezone.now(),
    )
    looked = access_record(
        actor=agent, kind=AccessKind.TICKET_VIEW, member_id=member_account.member_id
    )
    access_record(actor=agent, kind=AccessKind.MEMBER_VIEW, member_id=stranger.member_id)
    AccessJournalEntry.objects.create(
        actor=agent,
        kind=AccessKind.REVEAL,
        member_id=member_account.member_id,
        created_at=timezone.now() - dt.timedelta(days=40),
    )
    response = member_client.get("/account/activity/")
    assert response.status_code == 200
    page = response.content.decode()
    assert mine.reference in page and theirs.reference not in page
    assert "by an agent of the support team" in page and agent.username not in page
    assert "a@example.org" not in page and str(EmailTemplate.ACKNOWLEDGMENT.label) in page
    assert looked.created_at.strftime("%d/%m/%Y") in page
    assert (timezone.now() - dt.timedelta(days=40)).strftime("%d/%m/%Y") in page


def test_activity_is_linked_from_the_account_page_and_only_for_members(
    member_client: Client, agent_client: Client
) -> None:
    assert 'href="/account/activity/"' in member_client.get("/account/").content.decode()
    assert agent_client.get("/account/activity/").status_code == 403
    assert Client().get("/account/activity/").status_code == 302


def test_activity_reads_in_french_by_default(member_client: Client, settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"
    page = member_client.get("/account/activity/").content.decode()
    assert "Activité de mon dossier" in page
