"""Requests left without a decision are rejected by the system, and the member told."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from tests.factories import TicketFactory
from tickets.models import ActorKind, EventKind, RejectionReason, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage
from workflows.tasks import tickets_expire

pytestmark = pytest.mark.django_db


@override_settings(GUICHET_REQUEST_EXPIRY_DAYS=3)
def test_it_expires_only_requests_past_the_setting(django_capture_on_commit_callbacks: Any) -> None:
    now = timezone.now()
    old = TicketFactory(kind=TicketKind.RECOVERY, submitted_email="late@example.org")
    young = TicketFactory(kind=TicketKind.ACCESS)
    type(old).objects.filter(pk=old.pk).update(created_at=now - datetime.timedelta(days=3, hours=1))
    type(young).objects.filter(pk=young.pk).update(
        created_at=now - datetime.timedelta(days=2, hours=23)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tickets_expire() == 1
    old.refresh_from_db()
    young.refresh_from_db()
    assert (old.state, old.rejection_reason) == (TicketState.REJECTED, RejectionReason.EXPIRED)
    assert young.state == TicketState.PENDING
    event = old.events.get(kind=EventKind.TRANSITION)
    assert (event.actor_kind, event.reason) == (ActorKind.SYSTEM, RejectionReason.EXPIRED)
    [notice] = mail.outbox
    assert notice.to == ["late@example.org"] and old.reference in notice.subject
    assert OutboxMessage.objects.get().template == EmailTemplate.EXPIRED
    with django_capture_on_commit_callbacks(execute=True):
        assert tickets_expire() == 0  # idempotent


def test_the_beat_schedule_runs_it() -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "workflows.tasks.tickets_expire" in tasks
