"""Public-form limits trip alike for known and unknown identifiers (docs/security.md §3, 7)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from django.core import mail
from django.test import Client, override_settings

from members.throttling import cache
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import CROCKFORD_ALPHABET, EventKind, Ticket, TicketKind

pytestmark = pytest.mark.django_db
CSRF = re.compile(rb'value="[^"]{20,}"')


def recover(client: Client, capture: Any, member_number: str, email: str, **extra: Any) -> Any:
    with capture(execute=True):
        return client.post(
            "/recover/",
            {
                "member_number": member_number,
                "last_name": "Martin",
                "first_name": "Zoë",
                "birth_date": "12/04/1980",
                "email": email,
                **extra,
            },
        )


@pytest.fixture
def known(db: None) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="740000001"))


@override_settings(GUICHET_SUBMISSIONS_PER_IP_PER_HOUR=1000)
def test_the_identifier_limit_trips_after_the_same_count_known_or_not(
    client: Client, known: None, django_capture_on_commit_callbacks: Any
) -> None:
    outcomes = {}
    for number in ("740000001", "749999999"):
        codes = []
        for i in range(7):
            codes.append(
                recover(client, django_capture_on_commit_callbacks, number, f"a{i}@example.org")
            )
        outcomes[number] = [r.status_code for r in codes]
        last = codes[-1]
        assert last["Retry-After"] == "3600"
        outcomes[number + "-body"] = CSRF.sub(b"", last.content)
    assert outcomes["740000001"] == outcomes["749999999"] == [302] * 5 + [429] * 2
    assert outcomes["740000001-body"] == outcomes["749999999-body"]


def test_the_ip_limit_trips_on_every_public_form(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    for _ in range(30):
        assert client.post("/support/", {"topic": "cannot_log_in"}).status_code == 200
    assert client.post("/register/", {}).status_code == 429
    assert client.post("/recover/", {}).status_code == 429
    assert client.post("/support/", {}).status_code == 429
    other = Client(REMOTE_ADDR="10.2.2.2")
    assert other.post("/support/", {}).status_code == 200


@override_settings(GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR=1000)
def test_one_address_gets_at_most_five_form_e_mails_an_hour(
    client: Client, known: None, django_capture_on_commit_callbacks: Any
) -> None:
    pages = []
    for i in range(8):
        number = "740000001" if i % 2 else f"74{i:07d}"
        pages.append(recover(client, django_capture_on_commit_callbacks, number, "v@example.org"))
    assert [p.status_code for p in pages] == [302] * 8  # the same answer throughout
    assert len([m for m in mail.outbox if m.to == ["v@example.org"]]) == 5
    assert Ticket.objects.count() + Ticket.objects.filter(aliases__isnull=False).count() >= 2
    skipped = [
        e
        for e in Ticket.objects.get(member__member_number="740000001").events.all()
        if e.data.get("acknowledgment") == "skipped_address_limit"
    ]
    assert skipped  # the desk sees that no acknowledgment went out
    # Another address is unaffected.
    recover(client, django_capture_on_commit_callbacks, "740000001", "w@example.org")
    assert mail.outbox[-1].to == ["w@example.org"]


def test_a_cache_outage_never_refuses_a_submission(
    client: Client, known: None, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    """Forms fail open: a submitted request must stand (docs/security.md §20)."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "add", broken)
    for i in range(40):
        response = recover(client, django_capture_on_commit_callbacks, "740000001", "z@x.org")
        assert response.status_code == 302, i
    assert Ticket.objects.filter(kind=TicketKind.RECOVERY).count() == 1
    assert Ticket.objects.get().events.filter(kind=EventKind.ATTACHED).count() == 39


def _random_reference() -> str:
    return "REC-" + "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(8))


def test_guessed_references_get_one_404_then_the_rate_limit(client: Client) -> None:
    """docs/security.md §7 (unit scale: the per-minute limit engages at 30)."""
    bodies = set()
    codes = []
    for _ in range(30):
        reference = _random_reference()
        response = client.get(f"/requests/{reference}/")
        codes.append(response.status_code)
        bodies.add(CSRF.sub(b"", response.content.replace(reference.encode(), b"REF")))
    assert codes == [404] * 30
    assert len(bodies) == 1
    malformed = Client(REMOTE_ADDR="10.3.3.3").get("/requests/not-a-ref/")
    assert malformed.status_code == 404
    assert CSRF.sub(b"", malformed.content.replace(b"not-a-ref", b"REF")) in bodies
    assert client.get(f"/requests/{_random_reference()}/").status_code == 429


def test_an_existing_status_page_shows_no_personal_data(
    client: Client, known: None, django_capture_on_commit_callbacks: Any
) -> None:
    posted = recover(client, django_capture_on_commit_callbacks, "740000001", "me@example.org")
    page = client.get(posted["Location"]).content.decode()
    for leak in ("740000001", "Martin", "Zoë", "me@example.org", "1980"):
        assert leak not in page, leak
