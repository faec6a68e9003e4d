"""Retention: the daily purge forgets what the settings say, keeps what the figures need."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from members.models import Account, EmailChangeRequest
from tests.factories import TicketFactory
from workflows.models import EmailTemplate, FormSubmission, NotMeLink, OutboxMessage, OutboxStatus
from workflows.services.retention import retention_purge

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = dt.timedelta(days=1)


def _outbox(*, status: str, age_days: int, recipient: str) -> OutboxMessage:
    return OutboxMessage.objects.create(
        ticket=TicketFactory(),
        template=EmailTemplate.CREDENTIALS,
        recipient=recipient,
        status=status,
        context={"first_name": "Zoë"},
        created_at=NOW - age_days * DAY,
        sent_at=NOW - age_days * DAY if status == OutboxStatus.SENT else None,
    )


@override_settings(GUICHET_OUTBOX_RETENTION_DAYS=90, GUICHET_RETENTION_BATCH=2)
def test_old_finished_emails_forget_their_address_and_context_but_keep_their_row() -> None:
    old = [
        _outbox(status=s, age_days=91, recipient=f"old{i}@example.org")
        for i, s in enumerate([OutboxStatus.SENT, OutboxStatus.SENT, OutboxStatus.FAILED])
    ]
    recent = _outbox(status=OutboxStatus.SENT, age_days=89, recipient="recent@example.org")
    unsent = _outbox(status=OutboxStatus.PENDING, age_days=200, recipient="pending@example.org")

    counts = retention_purge(now=NOW)
    assert counts["outbox_redacted"] == 3
    for message in old:
        row = OutboxMessage.objects.get(pk=message.pk)
        assert (row.recipient, row.context) == ("", {})
        assert (row.status, row.template, row.ticket_id, row.sent_at) == (
            message.status,
            message.template,
            message.ticket_id,
            message.sent_at,
        )
    assert OutboxMessage.objects.get(pk=recent.pk).recipient == "recent@example.org"
    assert OutboxMessage.objects.get(pk=unsent.pk).recipient == "pending@example.org"
    assert retention_purge(now=NOW)["outbox_redacted"] == 0  # nothing left to forget


def test_expired_sessions_are_deleted_and_live_ones_kept() -> None:
    live = SessionStore()
    live["x"] = 1
    live.create()
    expired = SessionStore()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(expire_date=NOW - DAY)
    assert retention_purge(now=NOW)["sessions_deleted"] == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


@override_settings(GUICHET_EMAIL_CHANGE_RETENTION_DAYS=30)
def test_finished_email_changes_are_deleted_after_the_retention_period(
    member_account: Account,
) -> None:
    def change(**fields: object) -> EmailChangeRequest:
        return EmailChangeRequest.objects.create(
            account=member_account, new_email="new@example.org", **fields
        )

    applied_long_ago = change(used_at=NOW - 31 * DAY, outcome="applied")
    expired_long_ago = change(expires_at=NOW - 31 * DAY)
    applied_recently = change(used_at=NOW - 29 * DAY, outcome="applied")
    pending = change(expires_at=NOW + DAY)
    assert retention_purge(now=NOW)["email_changes_deleted"] == 2
    remaining = set(EmailChangeRequest.objects.values_list("pk", flat=True))
    assert remaining == {applied_recently.pk, pending.pk}
    assert not remaining & {applied_long_ago.pk, expired_long_ago.pk}


def test_spent_not_me_links_forget_the_address_they_were_sent_to(member_account: Account) -> None:
    def link(name: str, **fields: object) -> NotMeLink:
        return NotMeLink.objects.create(
            account=member_account,
            template=EmailTemplate.PASSWORD_CHANGED,
            token_hash=name * 64,
            sent_to="old@example.org",
            **{"expires_at": NOW + DAY, **fields},
        )

    expired = link("a", expires_at=NOW - DAY)
    used = link("b", used_at=NOW - DAY)
    live = link("c")
    assert retention_purge(now=NOW)["not_me_addresses_redacted"] == 2
    addresses = dict(NotMeLink.objects.values_list("pk", "sent_to"))
    assert addresses == {expired.pk: "", used.pk: "", live.pk: "old@example.org"}


def test_old_form_tokens_are_deleted() -> None:
    FormSubmission.objects.create(token_hash="a" * 64, created_at=NOW - 3 * DAY)
    fresh = FormSubmission.objects.create(token_hash="b" * 64, created_at=NOW)
    assert retention_purge(now=NOW)["form_tokens_deleted"] == 1
    assert list(FormSubmission.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_the_purge_command_prints_what_it_did() -> None:
    out = io.StringIO()
    call_command("purge_retention", stdout=out)
    assert out.getvalue().splitlines() == [
        "outbox_redacted: 0",
        "sessions_deleted: 0",
        "email_changes_deleted: 0",
        "not_me_addresses_redacted: 0",
        "form_tokens_deleted: 0",
        "access_journal_deleted: 0",
    ]


def test_the_purge_runs_daily_from_beat() -> None:
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["retention-purge"]
    assert entry["task"] == "workflows.tasks.retention_daily_purge"
    assert entry["schedule"].hour == {3}
