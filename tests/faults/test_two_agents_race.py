"""docs/security.md §24: two agents act on one ticket at the same instant; exactly one wins.

Threads with their own database connections meet at a barrier, then post the desk actions
through the real views. Rounds: 200 per pair under CI=true (GUICHET_RACE_ROUNDS overrides).
"""

from __future__ import annotations

import os
import threading
from html import escape
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tests.faults.services import IN_CI
from tests.second_factor import staff_login
from tickets.models import EventKind, Ticket, TicketEvent
from workflows.models import EmailTemplate, OutboxMessage

ROUNDS = int(os.environ.get("GUICHET_RACE_ROUNDS", "200" if IN_CI else "25"))

ACTIONS = {
    "confirm": {},
    "reject": {"reason": "duplicate"},
    "claim": {},
}


def _post(client: Client, path: str, data: dict[str, str], out: list[Any], barrier: Any) -> None:
    try:
        barrier.wait()
        response = client.post(path, data, follow=True)
        out.append((response.status_code, response.content.decode()))
    except Exception as exc:  # a crash in a thread must fail the test, not vanish
        out.append((599, repr(exc)))
    finally:
        connections.close_all()


@pytest.mark.parametrize(
    "pair", [("confirm", "confirm"), ("confirm", "reject"), ("confirm", "claim")]
)
def test_two_agents_on_one_ticket_give_one_transition_and_a_clear_answer(
    pair: tuple[str, str],
) -> None:
    assert connection.vendor == "postgresql"
    agents: list[Account] = [StaffFactory(), StaffFactory()]
    clients = []
    for agent in agents:
        client = Client(raise_request_exception=False)
        staff_login(client, agent)
        clients.append(client)
    for _ in range(ROUNDS):
        ticket = TicketFactory()
        barrier = threading.Barrier(2)
        results: list[list[Any]] = [[], []]
        threads = [
            threading.Thread(
                target=_post,
                args=(
                    clients[i],
                    f"/desk/tickets/{ticket.reference}/{pair[i]}/",
                    ACTIONS[pair[i]],
                    results[i],
                    barrier,
                ),
            )
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses = [r[0][0] for r in results]
        assert statuses == [200, 200], [r[0][1][:500] for r in results if r[0][0] != 200]
        ticket = Ticket.objects.get(pk=ticket.pk)
        transitions = TicketEvent.objects.filter(ticket=ticket, kind=EventKind.TRANSITION)
        # A claim that wins first makes the ticket the claimer's: the confirm is then refused.
        assert transitions.count() == (1 if ticket.state != "pending" else 0)
        if pair[1] != "claim":
            assert ticket.state != "pending"
        credentials = OutboxMessage.objects.filter(
            ticket=ticket, template=EmailTemplate.CREDENTIALS
        ).count()
        assert credentials == (1 if ticket.state == "confirmed" else 0)
        # The loser's attempt is in the history as a refusal, and the loser was told.
        assert TicketEvent.objects.filter(ticket=ticket, kind=EventKind.REFUSED).count() == 1
        bodies = results[0][0][1] + results[1][0][1]
        assert any(text in bodies or escape(text) in bodies for text in _loser_messages())


def _loser_messages() -> list[str]:
    from django.utils import translation

    from agentdesk.views import ACTION_ERRORS

    with translation.override("fr"):
        return [str(ACTION_ERRORS[code]) for code in ("already_decided", "claimed_by_other")]
