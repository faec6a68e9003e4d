"""docs/security.md §34: two approvers approve one risky confirmation at the same instant.

Exactly one approval wins: one transition to `confirmed`, one credentials e-mail queued; the
loser is told and their attempt is in the history. Threads with their own database connections
meet at a barrier, then post through the real views (PostgreSQL row locks, not Python locks).
Rounds: 200 under CI=true (GUICHET_RACE_ROUNDS overrides).
"""

from __future__ import annotations

import os
import threading
from html import escape
from typing import Any

from django.db import connection, connections
from django.test import Client

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory, TicketFactory
from tests.faults.services import IN_CI
from tests.second_factor import staff_login
from tickets.models import Channel, EventKind, Ticket, TicketEvent, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.decisions import ticket_confirm

ROUNDS = int(os.environ.get("GUICHET_RACE_ROUNDS", "200" if IN_CI else "25"))


def _post(client: Client, path: str, out: list[Any], barrier: Any) -> None:
    try:
        barrier.wait()
        response = client.post(path, {"comment": "checked"}, follow=True)
        out.append((response.status_code, response.content.decode()))
    except Exception as exc:  # a crash in a thread must fail the test, not vanish
        out.append((599, repr(exc)))
    finally:
        connections.close_all()


def test_two_approvers_at_once_give_one_transition_and_one_e_mail() -> None:
    assert connection.vendor == "postgresql"
    maker = StaffFactory()
    approvers: list[Account] = [
        StaffFactory(groups=["supervisors", "agents"]),
        StaffFactory(groups=["supervisors", "agents"]),
    ]
    clients = []
    for approver in approvers:
        client = Client(raise_request_exception=False)
        staff_login(client, approver)
        clients.append(client)
    for _ in range(ROUNDS):
        member = MemberFactory()
        MemberAccountFactory(member=member, email="onfile@example.org")
        ticket = TicketFactory(member=member, kind=TicketKind.RECOVERY, channel=Channel.PHONE)
        ticket_confirm(reference=ticket.reference, actor=maker)
        assert Ticket.objects.get(pk=ticket.pk).state == TicketState.AWAITING_APPROVAL
        barrier = threading.Barrier(2)
        results: list[list[Any]] = [[], []]
        path = f"/desk/tickets/{ticket.reference}/approve/"
        threads = [
            threading.Thread(target=_post, args=(clients[i], path, results[i], barrier))
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses = [r[0][0] for r in results]
        assert statuses == [200, 200], [r[0][1][:500] for r in results if r[0][0] != 200]
        assert Ticket.objects.get(pk=ticket.pk).state == TicketState.CONFIRMED
        approvals = TicketEvent.objects.filter(
            ticket=ticket, kind=EventKind.TRANSITION, to_state=TicketState.CONFIRMED
        )
        assert approvals.count() == 1
        assert approvals.get().actor_id in {a.pk for a in approvers}
        credentials = OutboxMessage.objects.filter(
            ticket=ticket, template=EmailTemplate.CREDENTIALS
        ).count()
        assert credentials == 1
        assert TicketEvent.objects.filter(ticket=ticket, kind=EventKind.REFUSED).count() == 1
        bodies = results[0][0][1] + results[1][0][1]
        assert any(text in bodies or escape(text) in bodies for text in _loser_messages())


def _loser_messages() -> list[str]:
    from django.utils import translation

    from agentdesk.views import ACTION_ERRORS

    with translation.override("fr"):
        return [str(ACTION_ERRORS[code]) for code in ("already_decided", "not_awaiting_approval")]
