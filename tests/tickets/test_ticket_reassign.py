"""Supervisors reassign tickets (one, many, a whole filtered queue) and release stale claims."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tickets.models import EventKind, Ticket, TicketEvent
from tickets.services import TicketActionError, ticket_reassign

pytestmark = pytest.mark.django_db


def test_it_gives_an_open_ticket_to_an_agent_and_records_who_did_it(
    supervisor: Account, agent: Account, second_agent: Account
) -> None:
    ticket = TicketFactory(assignee=second_agent, claimed_at=timezone.now())
    ticket_reassign(reference=ticket.reference, actor=supervisor, assignee=agent)
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.kind, event.actor, event.reason) == (EventKind.CLAIM, supervisor, "reassign")
    assert event.data == {"previous_assignee": "bob", "assignee": "alice"}


def test_reassigning_to_the_current_assignee_changes_nothing(
    supervisor: Account, agent: Account
) -> None:
    ticket = TicketFactory(assignee=agent, claimed_at=timezone.now())
    ticket_reassign(reference=ticket.reference, actor=supervisor, assignee=agent)
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


@pytest.mark.parametrize(
    ("case", "code"),
    [("agent_actor", "forbidden"), ("decided", "already_decided"), ("member", "invalid_assignee")],
)
def test_it_refuses(
    case: str, code: str, supervisor: Account, agent: Account, member_account: Account
) -> None:
    ticket = TicketFactory(state="rejected" if case == "decided" else "pending")
    actor = agent if case == "agent_actor" else supervisor
    assignee = member_account if case == "member" else agent
    with pytest.raises(TicketActionError) as error:
        ticket_reassign(reference=ticket.reference, actor=actor, assignee=assignee)
    assert error.value.code == code


def test_bulk_reassign_of_ticked_tickets(
    supervisor_client: Client, agent: Account, second_agent: Account
) -> None:
    chosen = [TicketFactory(), TicketFactory(assignee=second_agent, claimed_at=timezone.now())]
    decided = TicketFactory(state="confirmed")
    other = TicketFactory()
    response = supervisor_client.post(
        "/desk/supervisor/reassign/",
        {
            "assignee": "alice",
            "scope": "selected",
            "reference": [t.reference for t in chosen] + [decided.reference],
        },
        follow=True,
        headers={"accept-language": "en"},
    )
    assert response.status_code == 200
    assert set(Ticket.objects.filter(assignee=agent)) == set(chosen)
    assert Ticket.objects.get(pk=other.pk).assignee is None
    text = response.content.decode()
    assert "2 ticket(s) reassigned." in text
    assert decided.reference in text  # reported as not done


def test_bulk_reassign_of_a_whole_filtered_queue(supervisor_client: Client, agent: Account) -> None:
    rec = [TicketFactory(kind="REC") for _ in range(3)]
    reg = TicketFactory(kind="REG")
    done = TicketFactory(kind="REC", state="rejected")
    response = supervisor_client.post(
        "/desk/supervisor/reassign/?kind=REC", {"assignee": "alice", "scope": "filtered"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/desk/supervisor/queue/?kind=REC"
    assert set(Ticket.objects.filter(assignee=agent)) == set(rec)
    assert Ticket.objects.get(pk=reg.pk).assignee is None
    assert Ticket.objects.get(pk=done.pk).assignee is None


@pytest.mark.parametrize(
    "data",
    [
        {"assignee": "alice", "scope": "selected"},  # nothing ticked
        {"assignee": "nobody", "scope": "filtered"},
        {"assignee": "alice", "scope": "selected", "reference": "not a reference"},
        {"assignee": "alice", "scope": "everything"},
    ],
)
def test_bad_reassign_requests_change_nothing(
    supervisor_client: Client, agent: Account, data: dict[str, str]
) -> None:
    TicketFactory()
    response = supervisor_client.post("/desk/supervisor/reassign/", data)
    assert response.status_code == 302
    assert not Ticket.objects.filter(assignee__isnull=False).exists()


def test_release_stale_claims_releases_only_old_claims_through_the_service(
    supervisor_client: Client, agent: Account, settings: object
) -> None:
    now = timezone.now()
    stale = TicketFactory(assignee=agent, claimed_at=now - dt.timedelta(hours=5))
    fresh = TicketFactory(assignee=agent, claimed_at=now - dt.timedelta(hours=1))
    decided = TicketFactory(
        state="confirmed", assignee=agent, claimed_at=now - dt.timedelta(days=2)
    )
    response = supervisor_client.post("/desk/supervisor/release-stale/")
    assert response.status_code == 302
    assert Ticket.objects.get(pk=stale.pk).assignee is None
    assert Ticket.objects.get(pk=fresh.pk).assignee == agent
    assert Ticket.objects.get(pk=decided.pk).assignee == agent
    event = TicketEvent.objects.get(ticket=stale)
    assert (event.kind, event.data) == (EventKind.RELEASE, {"previous_assignee": "alice"})


def test_a_second_supervisor_can_be_given_tickets_but_not_a_disabled_agent(
    supervisor: Account,
) -> None:
    disabled = StaffFactory(username="gone", is_active=False)
    ticket = TicketFactory()
    with pytest.raises(TicketActionError):
        ticket_reassign(reference=ticket.reference, actor=supervisor, assignee=disabled)
    other_supervisor = StaffFactory(username="sue", groups=["supervisors", "agents"])
    ticket_reassign(reference=ticket.reference, actor=supervisor, assignee=other_supervisor)
    assert Ticket.objects.get(pk=ticket.pk).assignee == other_supervisor
