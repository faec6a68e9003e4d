"""Two apply steps (two beats, a beat and a retry), or an apply step and the member's cancel, on the
same waiting e-mail change at the same instant: it applies at most once, and never after a cancel.

Needs PostgreSQL (row locks; SQLite locks the whole database): skipped with a reason otherwise,
and a failure instead of a skip when CI=true.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from members.models import Account, EmailChangeOutcome, EmailChangeRequest
from tests.factories import MemberAccountFactory
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.accounts import account_email_change_cancel, email_change_apply

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        reason = "apply races need PostgreSQL row locks: set DATABASE_URL to PostgreSQL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
        pytest.skip(reason)


def _race(*attempts: Callable[[], object]) -> list[object]:
    """Run each attempt in its own thread (own connection), released together by a barrier."""
    barrier = threading.Barrier(len(attempts))
    results: list[object] = [None] * len(attempts)

    def run(index: int, attempt: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = attempt()
        except Exception as exc:  # a deadlock or any error is a result the test sees
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    return results


@pytest.fixture
def waiting(transactional_db: None) -> tuple[Account, EmailChangeRequest]:
    account: Account = MemberAccountFactory(email="old@example.org")
    now = timezone.now()
    change = EmailChangeRequest.objects.create(
        account=account,
        new_email="new@example.org",
        confirmed_at=now - datetime.timedelta(hours=73),
        applies_at=now - datetime.timedelta(hours=1),
    )
    return account, change


def test_two_apply_steps_at_once_apply_the_change_once(
    waiting: tuple[Account, EmailChangeRequest],
) -> None:
    account, change = waiting
    results = _race(*(lambda: email_change_apply(change_id=change.pk) for _ in range(3)))
    assert sorted(results, key=str) == [False, False, True]
    assert Account.objects.get(pk=account.pk).email == "new@example.org"
    assert OutboxMessage.objects.filter(template=EmailTemplate.EMAIL_CHANGED_NEW).count() == 1


def test_an_apply_step_and_a_cancel_at_once_agree(
    waiting: tuple[Account, EmailChangeRequest],
) -> None:
    account, change = waiting
    applied, cancelled = _race(
        lambda: email_change_apply(change_id=change.pk),
        lambda: account_email_change_cancel(account=account),
    )
    assert not isinstance(applied, Exception) and not isinstance(cancelled, Exception)
    change.refresh_from_db()
    email = Account.objects.get(pk=account.pk).email
    if applied:
        assert (cancelled, change.outcome, email) == (
            0,
            EmailChangeOutcome.APPLIED,
            "new@example.org",
        )
    else:
        assert (cancelled, change.outcome, email) == (
            1,
            EmailChangeOutcome.CANCELLED,
            "old@example.org",
        )
        assert not OutboxMessage.objects.filter(template=EmailTemplate.EMAIL_CHANGED_NEW).exists()
