"""Four-eyes at the desk: confirm, approve and send back through the real views (POST, CSRF);
the approval queues; the supervisors' count; bulk reassignment leaves the approval alone."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory, TicketFactory
from tests.second_factor import staff_login
from tickets.models import Channel, EventKind, Ticket, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage

pytestmark = pytest.mark.django_db

S = TicketState


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


def _phone_recovery() -> Ticket:
    """Forgotten codes asked for by phone: risky (typed by staff), codes to the address on file."""
    member = MemberFactory()
    MemberAccountFactory(member=member, email="onfile@example.org")
    return TicketFactory(member=member, kind=TicketKind.RECOVERY, channel=Channel.PHONE)


def _post(client: Client, ticket: Ticket, action: str, **data: str) -> str:
    response = client.post(f"/desk/tickets/{ticket.reference}/{action}/", data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def _credentials(ticket: Ticket) -> int:
    return OutboxMessage.objects.filter(ticket=ticket, template=EmailTemplate.CREDENTIALS).count()


def test_an_agents_risky_confirmation_waits_and_a_supervisor_approves_it(
    agent: Account,
    agent_client: Client,
    supervisor_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = _phone_recovery()
    page = _post(agent_client, ticket, "confirm", comment="caller answered the checks")
    assert "needs a second staff member" in page
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL and _credentials(ticket) == 0
    # The approver's page says who asked and why, and offers approve / send back.
    page = supervisor_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert f"Confirmation asked for by {agent.username}" in page
    assert "Received by phone, letter or e-mail" in page
    assert f"/desk/tickets/{ticket.reference}/approve/" in page
    assert f"/desk/tickets/{ticket.reference}/send-back/" in page
    with django_capture_on_commit_callbacks(execute=True):
        page = _post(supervisor_client, ticket, "approve", comment="ok")
    assert "Approved: the outcome is on its way to the member." in page
    ticket.refresh_from_db()
    assert ticket.state == S.CONFIRMED and _credentials(ticket) == 1
    # The history shows maker and approver.
    assert f"asked by {agent.username}" in page


def test_the_maker_is_offered_no_approval_and_a_forged_one_is_refused_and_recorded(
    agent_client: Client,
) -> None:
    ticket = _phone_recovery()
    _post(agent_client, ticket, "confirm")
    page = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert f"/desk/tickets/{ticket.reference}/approve/" not in page
    assert "You asked for this confirmation" in page
    _post(agent_client, ticket, "approve")
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL and _credentials(ticket) == 0
    assert ticket.events.filter(
        kind=EventKind.REFUSED, reason="own_confirmation", data__action="approve"
    ).exists()


def test_a_supervisors_own_risky_confirmation_needs_someone_else(
    supervisor_client: Client,
) -> None:
    ticket = _phone_recovery()
    _post(supervisor_client, ticket, "confirm")
    page = _post(supervisor_client, ticket, "approve")
    assert "You asked for this confirmation: another staff member must approve it." in page
    ticket.refresh_from_db()
    assert ticket.state == S.AWAITING_APPROVAL and _credentials(ticket) == 0


def test_a_send_back_needs_a_reason_and_returns_the_ticket_to_the_desk(
    agent_client: Client, supervisor_client: Client
) -> None:
    ticket = _phone_recovery()
    _post(agent_client, ticket, "confirm")
    page = _post(supervisor_client, ticket, "send-back", reason="")
    assert "Choose a reason from the list." in page
    assert Ticket.objects.get(pk=ticket.pk).state == S.AWAITING_APPROVAL
    page = _post(supervisor_client, ticket, "send-back", reason="identity_doubt", comment="why")
    assert "Sent back to the desk: nothing was carried out." in page
    ticket.refresh_from_db()
    assert ticket.state == S.PENDING and not OutboxMessage.objects.filter(ticket=ticket).exists()


def test_approve_and_send_back_need_post_and_a_csrf_token(
    agent_client: Client, supervisor: Account
) -> None:
    ticket = _phone_recovery()
    _post(agent_client, ticket, "confirm")
    strict = Client(enforce_csrf_checks=True)
    staff_login(strict, supervisor)
    for action in ("approve", "send-back"):
        url = f"/desk/tickets/{ticket.reference}/{action}/"
        assert strict.post(url, {"reason": "other"}).status_code == 403
        assert strict.get(url).status_code == 405
    assert Ticket.objects.get(pk=ticket.pk).state == S.AWAITING_APPROVAL


def test_the_approval_queues_list_what_waits_and_what_i_may_approve(
    agent: Account, agent_client: Client, supervisor_client: Client
) -> None:
    mine = _phone_recovery()
    other = _phone_recovery()
    plain = TicketFactory()
    _post(agent_client, mine, "confirm")
    _post(supervisor_client, other, "confirm")

    def listed(client: Client, queue: str) -> set[str]:
        page = client.get(f"/desk/?queue={queue}").content.decode()
        return {t.reference for t in (mine, other, plain) if t.reference in page}

    assert listed(agent_client, "approval") == {mine.reference, other.reference}
    assert listed(supervisor_client, "approval") == {mine.reference, other.reference}
    # The supervisor's own request is not theirs to approve; an agent approves nothing.
    assert listed(supervisor_client, "my_approval") == {mine.reference}
    assert listed(agent_client, "my_approval") == set()
    assert "Awaiting my approval" in agent_client.get("/desk/").content.decode()


def test_the_supervisors_page_counts_the_waiting_approvals(
    agent_client: Client, supervisor_client: Client
) -> None:
    for _ in range(2):
        _post(agent_client, _phone_recovery(), "confirm")
    page = supervisor_client.get("/desk/supervisor/").content.decode()
    assert "2 confirmations awaiting a second person&#x27;s approval" in page or (
        "2 confirmations awaiting a second person's approval" in page
    )
    assert "the oldest for" in page


def test_bulk_reassignment_never_carries_out_a_waiting_confirmation(
    agent_client: Client, supervisor_client: Client, second_agent: Account
) -> None:
    ticket = _phone_recovery()
    _post(agent_client, ticket, "confirm")
    response = supervisor_client.post(
        "/desk/supervisor/reassign/?queue=approval",
        {"assignee": second_agent.username, "scope": "filtered"},
        follow=True,
    )
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.assignee == second_agent  # reassigned, as any open ticket
    assert ticket.state == S.AWAITING_APPROVAL and _credentials(ticket) == 0
