"""The outbox lease: a claim carries a fencing token; only the current holder may mark the message.

No session lock is involved (PgBouncer in transaction mode hands a session to another client
between transactions): what keeps a message from being marked twice is the token on the row.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from members.models import Account
from tests.factories import TicketFactory
from tickets.models import EventKind, TicketEvent
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services import delivery
from workflows.services.decisions import ticket_confirm
from workflows.services.delivery import outbox_deliver
from workflows.services.outbox import (
    outbox_claim,
    outbox_lease_renew,
    outbox_mark_failed,
    outbox_mark_sent,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def message(agent: Account) -> OutboxMessage:
    ticket = TicketFactory(submitted_email="lease@example.org")
    ticket_confirm(reference=ticket.reference, actor=agent)
    return OutboxMessage.objects.get(template=EmailTemplate.CREDENTIALS)


def _expire_lease(message_id: int) -> None:
    OutboxMessage.objects.filter(pk=message_id).update(
        lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )


def _sent_events(message: OutboxMessage) -> int:
    return TicketEvent.objects.filter(
        ticket_id=message.ticket_id, kind=EventKind.EMAIL, reason="sent"
    ).count()


def test_every_claim_takes_a_new_fencing_token_and_names_its_owner(message: OutboxMessage) -> None:
    first = outbox_claim(message_id=message.pk)
    assert first is not None and first.lease_token == 1 and ":" in first.lease_owner
    assert outbox_claim(message_id=message.pk) is None  # the lease is live
    _expire_lease(message.pk)
    second = outbox_claim(message_id=message.pk)
    assert second is not None and second.lease_token == 2


def test_a_sender_whose_lease_was_taken_over_never_marks_the_message(
    message: OutboxMessage,
) -> None:
    stale = outbox_claim(message_id=message.pk)
    assert stale is not None
    _expire_lease(message.pk)
    current = outbox_claim(message_id=message.pk)
    assert current is not None

    outbox_mark_sent(message=stale)
    outbox_mark_failed(message=stale, error="late failure", permanent=True)
    assert outbox_lease_renew(message=stale) is False
    row = OutboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.lease_token, row.last_error) == (OutboxStatus.SENDING, 2, "")
    assert _sent_events(message) == 0

    assert outbox_lease_renew(message=current) is True
    outbox_mark_sent(message=current)
    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.SENT
    assert _sent_events(message) == 1


def test_renewing_pushes_the_lease_forward_for_the_holder_only(message: OutboxMessage) -> None:
    claimed = outbox_claim(message_id=message.pk)
    assert claimed is not None
    OutboxMessage.objects.filter(pk=message.pk).update(
        lease_until=timezone.now() + datetime.timedelta(seconds=1)
    )
    assert outbox_lease_renew(message=claimed)
    row = OutboxMessage.objects.get(pk=message.pk)
    assert row.lease_until is not None
    assert row.lease_until > timezone.now() + datetime.timedelta(seconds=100)  # 120 s lease


def test_a_delivery_run_finding_a_live_lease_is_busy_and_sends_nothing(
    message: OutboxMessage,
) -> None:
    assert outbox_claim(message_id=message.pk) is not None
    assert outbox_deliver(message_id=message.pk) == "busy"
    assert mail.outbox == []


def test_a_lease_lost_before_the_send_sends_nothing_and_marks_nothing(
    message: OutboxMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = delivery.build_email

    def build_then_lose_the_lease(*args: Any, **kwargs: Any) -> Any:
        email = real_build(*args, **kwargs)
        # Meanwhile the lease expired and another worker claimed the message (token 2).
        _expire_lease(message.pk)
        assert outbox_claim(message_id=message.pk) is not None
        return email

    monkeypatch.setattr(delivery, "build_email", build_then_lose_the_lease)
    assert outbox_deliver(message_id=message.pk) == "lost"
    assert mail.outbox == []
    row = OutboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.lease_token) == (OutboxStatus.SENDING, 2)
    assert _sent_events(message) == 0
