"""docs/security.md §19: cause, history and outbox row commit together or not at all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from members.models import Account
from tests.factories import TicketFactory
from tickets.models import Ticket, TicketEvent
from workflows.models import OutboxMessage, OutboxStatus
from workflows.services import decisions
from workflows.services.decisions import ticket_confirm
from workflows.services.outbox import outbox_dispatch, outbox_due_ids

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failure_after_the_outbox_insert_rolls_back_transition_history_and_outbox(
    agent: Account,
) -> None:
    ticket = TicketFactory()
    real_enqueue = decisions.outbox_enqueue

    def enqueue_then_fail(**kwargs: Any) -> OutboxMessage:
        real_enqueue(**kwargs)
        raise RuntimeError("injected after the outbox insert")

    with (
        mock.patch.object(decisions, "outbox_enqueue", enqueue_then_fail),
        pytest.raises(RuntimeError),
    ):
        ticket_confirm(reference=ticket.reference, actor=agent)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.state == "pending"
    assert not TicketEvent.objects.filter(ticket=ticket).exists()
    assert not OutboxMessage.objects.filter(ticket=ticket).exists()
    assert not Account.objects.filter(member=ticket.member).exists()


def test_a_publish_failure_after_commit_leaves_the_row_pending_for_the_sweep(
    agent: Account, settings: Any
) -> None:
    ticket = TicketFactory()
    with mock.patch(
        "workflows.tasks.outbox_deliver_task.delay", side_effect=ConnectionError("broker down")
    ) as delay:
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert delay.called
    message = OutboxMessage.objects.get(ticket=ticket)
    assert message.status == OutboxStatus.PENDING
    assert message.dispatched_at is None
    assert Ticket.objects.get(pk=ticket.pk).state == "confirmed"
    later = timezone.now() + timedelta(seconds=settings.GUICHET_OUTBOX_SWEEP_GRACE_SECONDS + 1)
    assert message.pk in outbox_due_ids(now=later)
    with mock.patch("workflows.tasks.outbox_deliver_task.delay") as delay:
        assert outbox_dispatch(message_id=message.pk) is True
    delay.assert_called_once_with(message.pk)
    message.refresh_from_db()
    assert message.dispatched_at is not None


def test_a_message_is_marked_dispatched_before_a_worker_can_claim_it(agent: Account) -> None:
    # A worker takes the task the moment it is published; the dispatch's own UPDATE must be over
    # by then, or the worker's SKIP LOCKED claim gives up and the e-mail waits for the sweep.
    seen_at_publish: list[object] = []

    def worker_takes_it_at_once(message_id: int) -> None:
        seen_at_publish.append(OutboxMessage.objects.get(pk=message_id).dispatched_at)

    ticket = TicketFactory()
    with mock.patch(
        "workflows.tasks.outbox_deliver_task.delay", side_effect=worker_takes_it_at_once
    ):
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert seen_at_publish and all(at is not None for at in seen_at_publish)
