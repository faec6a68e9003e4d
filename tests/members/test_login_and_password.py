"""Member login (member ID + password), the temporary-password jail, password change, logout."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from members.models import Account, AccountStatus
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory
from workflows.models import EmailTemplate, OutboxMessage

pytestmark = pytest.mark.django_db

PASSWORD = "a long member passphrase"  # MemberAccountFactory's
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
NEW_PASSWORD = "Tilleul-Verveine-Camomille-42"


def _login(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/login/", {"username": username, "password": password}, **extra)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- login -----------------------------------------------------------------------------------


def test_a_member_logs_in_with_member_id_and_password(client: Client) -> None:
    account = MemberAccountFactory(member=MemberFactory(member_number="AB123456"))
    response = _login(client, "AB123456")
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert client.session["_auth_user_id"] == str(account.pk)


@pytest.mark.parametrize("typed", ["ab123456", "Ab123456", "  AB123456  "])
def test_the_member_id_is_not_case_sensitive(client: Client, typed: str) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="AB123456"))
    assert _login(client, typed).status_code == 302
    assert _logged_in(client)


def test_the_password_is_case_sensitive(client: Client) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="AB123456"))
    assert _login(client, "AB123456", PASSWORD.upper()).status_code == 200
    assert not _logged_in(client)


def test_the_e_mail_address_is_not_a_login(client: Client) -> None:
    account = MemberAccountFactory()
    assert _login(client, account.email).status_code == 200
    assert not _logged_in(client)


def _error_page(client: Client, username: str, password: str) -> str:
    response = _login(client, username, password, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert not _logged_in(client)
    return CSRF.sub("csrf", response.content.decode().replace(username, "…"))


def test_every_failure_looks_the_same(client: Client) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="600000001"))
    MemberAccountFactory(
        member=MemberFactory(member_number="600000002"),
        status=AccountStatus.CLOSED,
        is_active=False,
    )
    StaffFactory(username="600000003", password=PASSWORD)
    pages = {
        "wrong_password": _error_page(client, "600000001", "not the passphrase"),
        "unknown_id": _error_page(client, "600000009", PASSWORD),
        "closed_account": _error_page(client, "600000002", PASSWORD),
        "staff_account": _error_page(client, "600000003", PASSWORD),
    }
    assert "Incorrect member ID or password." in pages["wrong_password"]
    for name, page in pages.items():
        assert page == pages["wrong_password"], name


def test_a_closed_account_cannot_log_in_even_if_left_active(client: Client) -> None:
    """Status `closed` alone is enough: an inconsistent is_active must not reopen the account."""
    MemberAccountFactory(member=MemberFactory(member_number="600000004"), status="closed")
    assert _login(client, "600000004").status_code == 200
    assert not _logged_in(client)


def test_staff_cannot_use_the_member_login_nor_members_the_desk_login(client: Client) -> None:
    StaffFactory(username="alice2", password=PASSWORD)
    MemberAccountFactory(member=MemberFactory(member_number="600000005"))
    assert _login(client, "alice2").status_code == 200
    response = client.post("/desk/login/", {"username": "600000005", "password": PASSWORD})
    assert response.status_code == 200
    assert not _logged_in(client)


def test_the_session_key_changes_at_login(client: Client) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="600000006"))
    session = client.session
    session["anonymous_visit"] = True
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=before).exists()
    _login(client, "600000006")
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert _logged_in(client)


# --- temporary password ----------------------------------------------------------------------


@pytest.fixture
def jailed() -> Client:
    """A member logged in with a temporary password."""
    account = MemberAccountFactory(
        member=MemberFactory(member_number="600000010", last_name="Martin", first_name="Zoë"),
        must_change_password=True,
    )
    client = Client()
    client.force_login(account)
    return client


@pytest.mark.parametrize("path", ["/account/", "/", "/help/", "/register/", "/desk/"])
def test_a_temporary_password_reaches_only_the_password_change(jailed: Client, path: str) -> None:
    response = jailed.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/account/password/"


@pytest.mark.parametrize("path", ["/account/", "/register/", "/desk/tickets/REG-ABCDEFGH/note/"])
def test_a_temporary_password_cannot_post_elsewhere(jailed: Client, path: str) -> None:
    assert jailed.post(path, {"body": "x"}).status_code == 403


def test_a_temporary_password_may_change_it_and_log_out(jailed: Client) -> None:
    assert jailed.get("/account/password/").status_code == 200
    response = jailed.post("/logout/")
    assert response.status_code == 302
    assert not _logged_in(jailed)


def test_a_login_with_a_temporary_password_lands_on_the_change_form(client: Client) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="600000011"), must_change_password=True)
    response = _login(client, "600000011")
    assert response["Location"] == "/account/password/"


# --- password policy -------------------------------------------------------------------------


@pytest.fixture
def account() -> Account:
    return MemberAccountFactory(
        member=MemberFactory(member_number="600000020", last_name="Fontaine", first_name="Zoë"),
        email="zoe.fontaine@example.org",
        must_change_password=True,
    )


def _change(client: Client, new: str, old: str = PASSWORD, confirm: str | None = None) -> Any:
    return client.post(
        "/account/password/",
        {"old_password": old, "new_password1": new, "new_password2": confirm or new},
        HTTP_ACCEPT_LANGUAGE="en",
    )


POLICY = {
    "too_short": ("Court-9xyz", "This password is too short"),
    "common": ("1q2w3e4r5t6y", "This password is too common."),
    "member_id": ("x600000020-and-more", "must not contain your member ID or your name"),
    "last_name": ("jardin-fontaine-du-roi", "must not contain your member ID or your name"),
    "same_as_old": (PASSWORD, "must differ from the current one"),
    "too_long": ("x" * 300, "too long"),
}


@pytest.mark.parametrize("case", list(POLICY))
def test_the_policy_refuses_with_a_field_error(account: Account, case: str) -> None:
    client = Client()
    client.force_login(account)
    new, message = POLICY[case]
    response = _change(client, new)
    assert response.status_code == 200
    assert message in response.content.decode()
    account.refresh_from_db()
    assert account.check_password(PASSWORD)
    assert account.must_change_password is True
    assert not OutboxMessage.objects.exists()


def test_a_wrong_old_password_or_mismatched_confirmation_is_refused(account: Account) -> None:
    client = Client()
    client.force_login(account)
    assert _change(client, NEW_PASSWORD, old="wrong").status_code == 200
    assert _change(client, NEW_PASSWORD, confirm=NEW_PASSWORD + "!").status_code == 200
    account.refresh_from_db()
    assert account.check_password(PASSWORD)


def test_a_good_password_ends_the_jail_and_other_sessions(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    this, other = Client(), Client()
    this.force_login(account)
    other.force_login(account)
    assert other.get("/account/password/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = _change(this, NEW_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/account/"

    account.refresh_from_db()
    assert account.must_change_password is False
    assert account.temporary_password_expires_at is None
    assert account.password_changed_at is not None
    assert account.check_password(NEW_PASSWORD)
    assert not account.check_password(PASSWORD)

    [row] = OutboxMessage.objects.all()
    assert (row.template, row.recipient) == (EmailTemplate.PASSWORD_CHANGED, account.email)
    [email] = mail.outbox
    assert email.to == [account.email]
    assert NEW_PASSWORD not in email.body

    # This session goes on, freed; the other one has ended.
    assert this.get("/account/").status_code == 200
    response = other.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_new_password_logs_in_and_the_old_one_does_not(account: Account) -> None:
    client = Client()
    client.force_login(account)
    _change(client, NEW_PASSWORD)
    assert _login(Client(), "600000020", PASSWORD).status_code == 200
    assert _login(Client(), "600000020", NEW_PASSWORD)["Location"] == "/account/"


# --- logout ----------------------------------------------------------------------------------


def test_logout_is_post_only(member_client: Client) -> None:
    assert member_client.get("/logout/").status_code == 405
    assert _logged_in(member_client)
    response = member_client.post("/logout/")
    assert response.status_code == 302
    assert not _logged_in(member_client)
    assert member_client.get("/account/").status_code == 302


def test_the_account_page_needs_a_member(client: Client, agent_client: Client) -> None:
    assert client.get("/account/")["Location"].startswith("/login/")
    assert agent_client.get("/account/").status_code == 403


def test_closing_an_account_ends_its_open_sessions(member_client: Client) -> None:
    assert member_client.get("/account/").status_code == 200
    Account.objects.filter(is_staff=False).update(status=AccountStatus.CLOSED)
    assert member_client.get("/account/")["Location"].startswith("/login/")
