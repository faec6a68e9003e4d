"""Self-service e-mail change: password, link to the new address, notices (docs/security.md §17).

And its guards (docs/security.md §18).
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from members.models import Account, EmailChangeRequest
from tests.factories import MemberAccountFactory, MemberFactory
from workflows.services.accounts import email_changes_apply_due

pytestmark = pytest.mark.django_db
PASSWORD = "a long member passphrase"
LINK = re.compile(r"http://\S+/account/email/confirm/([A-Za-z0-9_-]+)/")


@pytest.fixture
def account(db: None) -> Account:
    return MemberAccountFactory(
        member=MemberFactory(member_number="760000001"), email="old@example.org"
    )


@pytest.fixture
def logged_in(account: Account) -> Client:
    client = Client()
    assert (
        client.post("/login/", {"username": "760000001", "password": PASSWORD}).status_code == 302
    )
    return client


def ask(
    client: Client, capture: Any, password: str = PASSWORD, new: str = "new@example.org"
) -> Any:
    mail.outbox.clear()
    with capture(execute=True):
        return client.post("/account/email/", {"password": password, "new_email": new})


def test_the_account_page_shows_the_member_id_never_editable(logged_in: Client) -> None:
    page = logged_in.get("/account/").content.decode()
    assert "760000001" in page and "old@example.org" in page
    assert 'name="member_number"' not in page and 'name="username"' not in page


def test_a_wrong_password_changes_nothing_and_counts_as_a_failed_login(
    logged_in: Client,
    account: Account,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from members import throttling

    frozen = time.time()
    monkeypatch.setattr(throttling, "_now", lambda: frozen)
    for _ in range(3):
        response = ask(logged_in, django_capture_on_commit_callbacks, password="not it at all")
        assert response.status_code == 200
    assert not EmailChangeRequest.objects.exists() and not mail.outbox
    assert throttling.login_delay_seconds(3) > 0
    assert (
        Client().post("/login/", {"username": "760000001", "password": PASSWORD}).status_code == 200
    )


def test_the_change_applies_only_once_the_link_is_followed(
    logged_in: Client, account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    response = ask(logged_in, django_capture_on_commit_callbacks)
    assert response["Location"] == "/account/"
    [link_mail] = mail.outbox
    assert link_mail.to == ["new@example.org"]  # the new address proves it is reachable
    token = LINK.search(link_mail.body).group(1)
    assert token in str(link_mail.alternatives[0][0])
    assert Account.objects.get(pk=account.pk).email == "old@example.org"
    # Only a hash of the token is stored anywhere.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (table names from the schema)
            assert token not in str(cursor.fetchall()), table
    # GET changes nothing (no state change on GET).
    stranger = Client()
    assert stranger.get(f"/account/email/confirm/{token}/").status_code == 200
    assert Account.objects.get(pk=account.pk).email == "old@example.org"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = stranger.post(f"/account/email/confirm/{token}/")
    assert confirmed.status_code == 302
    # Confirmed, the change waits (GUICHET_EMAIL_CHANGE_DELAY_HOURS): only the old address is
    # told, with its veto link; the address on file is still the old one.
    assert Account.objects.get(pk=account.pk).email == "old@example.org"
    assert [m.to for m in mail.outbox] == [["old@example.org"]]
    mail.outbox.clear()
    due = timezone.now() + datetime.timedelta(hours=72, seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=due) == 1
    assert Account.objects.get(pk=account.pk).email == "new@example.org"
    notices = {m.to[0]: m for m in mail.outbox}
    assert set(notices) == {"old@example.org", "new@example.org"}  # docs/security.md §17
    for notice in notices.values():
        assert token not in notice.body and PASSWORD not in notice.body
    # Single use.
    again = stranger.post(f"/account/email/confirm/{token}/")
    assert again.status_code == 404


def test_the_link_expires_after_an_hour(
    logged_in: Client, account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    ask(logged_in, django_capture_on_commit_callbacks)
    token = LINK.search(mail.outbox[0].body).group(1)
    later = timezone.now() + datetime.timedelta(hours=1, seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert Client().post(f"/account/email/confirm/{token}/").status_code == 404
    assert Account.objects.get(pk=account.pk).email == "old@example.org"


def test_a_newer_request_voids_the_older_link(
    logged_in: Client, account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    ask(logged_in, django_capture_on_commit_callbacks, new="first@example.org")
    first = LINK.search(mail.outbox[0].body).group(1)
    ask(logged_in, django_capture_on_commit_callbacks, new="second@example.org")
    assert Client().post(f"/account/email/confirm/{first}/").status_code == 404
    assert Account.objects.get(pk=account.pk).email == "old@example.org"


@pytest.mark.parametrize("token", ["x", "A" * 43, "../../etc", "%00"])
def test_unknown_or_malformed_tokens_get_a_plain_404(client: Client, token: str) -> None:
    assert client.post(f"/account/email/confirm/{token}/").status_code == 404


def test_anonymous_visitors_cannot_ask(client: Client) -> None:
    response = client.post("/account/email/", {"password": PASSWORD, "new_email": "a@b.org"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_message_after_asking_says_the_change_then_waits_and_can_be_stopped(
    logged_in: Client, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.GUICHET_EMAIL_CHANGE_DELAY_HOURS = 72
    settings.LANGUAGE_CODE = "en"
    response = ask(logged_in, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    page = logged_in.get(response["Location"]).content.decode()
    assert "within an hour" in page
    assert "72 hours" in page
    assert "current address" in page and "stop" in page


def test_the_message_after_asking_tells_the_wait_in_french_too(
    logged_in: Client, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.GUICHET_EMAIL_CHANGE_DELAY_HOURS = 72
    settings.LANGUAGE_CODE = "fr"
    response = ask(logged_in, django_capture_on_commit_callbacks)
    page = logged_in.get(response["Location"]).content.decode()
    assert "attend ensuite 72 heures" in page and "peut arrêter le changement" in page
