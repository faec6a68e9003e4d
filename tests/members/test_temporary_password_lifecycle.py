"""Temporary passwords: forced change, expiry, exactness, sessions (docs/security.md §13-16)."""

from __future__ import annotations

import contextlib
import datetime
import re
import time
import unicodedata
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from members import throttling
from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory
from tests.second_factor import fresh_code
from tickets.models import EventKind, TicketKind
from workflows.services.decisions import ticket_confirm
from workflows.services.intake import RequestData, request_intake

pytestmark = pytest.mark.django_db
TEMP_LINE = re.compile(r"^([A-Za-z2-9]{10})$", re.M)
NEW_PASSWORD = "une phrase de passe bien longue"


@pytest.fixture
def issued(agent: Account, django_capture_on_commit_callbacks: Any) -> tuple[Account, str, Any]:
    """A member who asked for new codes and got them: (account, temporary password, ticket)."""
    account = MemberAccountFactory(
        member=MemberFactory(member_number="750000001"), email="onfile@example.org"
    )
    ticket = request_intake(
        data=RequestData(
            kind=TicketKind.RECOVERY,
            member_number="750000001",
            last_name="Martin",
            first_name="Zoë",
            birth_date=datetime.date(1980, 4, 12),
            email="typed@example.org",
        )
    ).ticket
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    [codes] = mail.outbox
    return Account.objects.get(pk=account.pk), TEMP_LINE.findall(codes.body)[-1], ticket


def login(client: Client, password: str) -> Any:
    return client.post("/login/", {"username": "750000001", "password": password})


def test_a_temporary_password_session_reaches_only_password_change_and_logout(
    issued: tuple[Account, str, Any],
) -> None:
    _, temporary, _ = issued
    client = Client()
    response = login(client, temporary)
    assert response["Location"] == "/account/password/"
    for path in ("/account/", "/account/email/", "/support/", "/"):
        assert client.get(path)["Location"] == "/account/password/", path
    assert client.post("/account/email/", {"password": temporary}).status_code == 403
    assert client.get("/account/password/").status_code == 200


def test_the_new_password_must_differ_and_follow_the_policy(
    issued: tuple[Account, str, Any],
) -> None:
    _, temporary, _ = issued
    client = Client()
    login(client, temporary)
    for bad in (temporary, "short", "password1234", "750000001xyzabc"):
        response = client.post(
            "/account/password/",
            {"old_password": temporary, "new_password1": bad, "new_password2": bad},
        )
        assert response.status_code == 200, bad
    response = client.post(
        "/account/password/",
        {"old_password": temporary, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response["Location"] == "/account/"
    assert login(Client(), temporary).status_code == 200  # the temporary one is dead
    assert login(Client(), NEW_PASSWORD).status_code == 302


def test_no_one_is_logged_in_by_a_reset(issued: tuple[Account, str, Any]) -> None:
    account, _, _ = issued
    assert not account.last_login


def test_it_expires_after_24_hours_with_a_message_only_its_holder_sees(
    issued: tuple[Account, str, Any],
) -> None:
    account, temporary, ticket = issued
    ttl = settings.GUICHET_TEMP_PASSWORD_TTL
    assert ttl == datetime.timedelta(hours=24)
    expires = account.temporary_password_expires_at
    with mock.patch(
        "django.utils.timezone.now", return_value=expires - datetime.timedelta(seconds=1)
    ):
        assert login(Client(), temporary).status_code == 302
    after = expires + datetime.timedelta(seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=after):
        refused = login(Client(HTTP_ACCEPT_LANGUAGE="en"), temporary)
        wrong = login(Client(HTTP_ACCEPT_LANGUAGE="en"), "NotThePassw0rd")
    assert refused.status_code == wrong.status_code == 200
    assert "Forgotten codes" in refused.content.decode()
    assert "expired" in refused.content.decode()
    assert "expired" not in wrong.content.decode()  # no oracle for a guesser
    assert ticket.events.filter(
        kind=EventKind.OUTCOME, reason="temporary_password_expired"
    ).exists()


def test_only_the_exact_string_from_the_e_mail_opens(
    issued: tuple[Account, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, temporary, _ = issued
    variants = {
        temporary.swapcase(),
        temporary[:-1],
        temporary + " ",
        " " + temporary,
        unicodedata.normalize("NFKC", temporary).replace("a", "\uff41"),  # fullwidth look-alike
        "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in temporary),
    }
    variants.discard(temporary)
    for variant in variants:
        assert login(Client(), variant).status_code == 200, repr(variant)
    # Past the growing delay those failures earned (not yet the lock):
    monkeypatch.setattr(throttling, "_now", lambda: time.time() + 120)
    assert login(Client(), temporary).status_code == 302


def test_issuing_codes_or_changing_the_password_ends_other_sessions(
    agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    """docs/security.md §16."""
    account = MemberAccountFactory(
        member=MemberFactory(member_number="750000002"), email="s@example.org"
    )
    laptop, phone = Client(), Client()
    for client in (laptop, phone):
        client.post("/login/", {"username": "750000002", "password": "a long member passphrase"})
        assert client.get("/account/").status_code == 200
    # A password change here keeps this session, ends the other.
    laptop.post(
        "/account/password/",
        {
            "old_password": "a long member passphrase",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert laptop.get("/account/").status_code == 200
    assert phone.get("/account/").status_code == 302
    # New codes issued by support end every session.
    ticket = request_intake(
        data=RequestData(
            kind=TicketKind.ACCESS,
            member_number="750000002",
            last_name="Martin",
            first_name="Zoë",
            birth_date=datetime.date(1980, 4, 12),
            email="s@example.org",
        )
    ).ticket
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert laptop.get("/account/").status_code == 302
    assert Account.objects.get(pk=account.pk).must_change_password


def test_login_rotates_the_session_key_and_logout_kills_the_old_cookie() -> None:
    MemberAccountFactory(member=MemberFactory(member_number="750000003"))
    client = Client()
    client.get("/login/")
    client.session.save()
    before = client.session.session_key
    client.post("/login/", {"username": "750000003", "password": "a long member passphrase"})
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    client.post("/logout/")
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = after
    assert replay.get("/account/").status_code == 302


def _desk_session(agent: Account) -> Client:
    client = Client()
    client.post("/desk/login/", {"username": agent.username, "password": "staff password 123"})
    client.post("/desk/second-factor/", {"otp_token": fresh_code(agent)})
    assert client.get("/desk/").status_code == 200
    return client


@contextlib.contextmanager
def _at(moment: datetime.datetime) -> Iterator[None]:
    """Move both clocks the session machinery reads: Django's (expiry) and time's (absolute)."""
    with (
        mock.patch("django.utils.timezone.now", return_value=moment),
        mock.patch("time.time", return_value=moment.timestamp()),
    ):
        yield


@override_settings(SESSION_COOKIE_AGE=30 * 60)
def test_the_desk_session_ends_after_30_idle_minutes_but_activity_keeps_it(agent: Account) -> None:
    client = _desk_session(agent)
    start = timezone.now()
    with _at(start + datetime.timedelta(minutes=25)):
        assert client.get("/desk/").status_code == 200  # activity renews the idle window
    with _at(start + datetime.timedelta(minutes=50)):
        assert client.get("/desk/").status_code == 200  # 25 min after the last request
    with _at(start + datetime.timedelta(minutes=50 + 30, seconds=1)):
        assert client.get("/desk/").status_code == 302  # 30 min 1 s idle: logged out


@override_settings(GUICHET_SESSION_ABSOLUTE_SECONDS=12 * 3600)
def test_the_desk_session_ends_12_hours_after_login_whatever_the_activity(agent: Account) -> None:
    client = _desk_session(agent)
    later = timezone.now() + datetime.timedelta(hours=12, seconds=1)
    with mock.patch("time.time", return_value=later.timestamp()):
        assert client.get("/desk/").status_code == 302
