"""docs/security.md §25: a public form posted twice (double click, reload, retry) is one request.

Each rendering of /register/, /recover/ and /support/ carries a one-time `form_token`; the
second POST of the same page gets the first one's status page, with no second ticket, alias or
e-mail. Without a token (old page, script) every POST is a request of its own, as before.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from tests.factories import MemberFactory
from tests.requests import identity_form, registration_form
from tickets.models import Ticket
from workflows.models import EmailTemplate, FormSubmission, OutboxMessage, RequestAlias
from workflows.services.submissions import form_submissions_purge, submission_once

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'name="form_token" value="([A-Za-z0-9_-]{43})"')

FORMS = {
    "/register/": registration_form(nir=None),
    "/recover/": identity_form(member_number="100200300", nir=None, email="zoe@example.org"),
    "/support/": {
        **identity_form(member_number="100200300", nir=None, email="zoe@example.org"),
        "topic": "codes_never_received",
        "message": "Je n'ai rien reçu.",
    },
}


def token_of(client: Client, path: str) -> str:
    match = TOKEN.search(client.get(path).content.decode())
    assert match, f"no form_token on {path}"
    return match.group(1)


def requests_stored() -> tuple[int, int, int]:
    return Ticket.objects.count(), RequestAlias.objects.count(), OutboxMessage.objects.count()


@pytest.mark.parametrize("known", [True, False], ids=["known-member", "unknown-id"])
@pytest.mark.parametrize("path", list(FORMS))
def test_the_same_page_posted_twice_is_one_request(client: Client, path: str, known: bool) -> None:
    if known:
        MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    data = {**FORMS[path], "form_token": token_of(client, path)}

    first = client.post(path, data)
    assert first.status_code == 302, first.content.decode()[:2000]
    stored = requests_stored()
    assert stored[0] + stored[1] == 1 and stored[2] >= 1

    again = client.post(path, data)
    assert again.status_code == 302
    assert again["Location"] == first["Location"]
    assert requests_stored() == stored
    assert FormSubmission.objects.get().reference in first["Location"]


def test_each_rendering_has_its_own_token_so_a_new_page_is_a_new_request(client: Client) -> None:
    path = "/register/"
    tokens = {token_of(client, path) for _ in range(3)}
    assert len(tokens) == 3
    first, second = (
        client.post(path, {**FORMS[path], "form_token": token}) for token in sorted(tokens)[:2]
    )
    assert first["Location"] != second["Location"]
    assert Ticket.objects.count() == 2  # unknown ID twice: two requests, as without tokens


def test_a_page_with_errors_keeps_its_token_until_it_is_accepted(client: Client) -> None:
    path = "/register/"
    token = token_of(client, path)
    refused = client.post(path, {**FORMS[path], "email": "not an address", "form_token": token})
    assert refused.status_code == 200
    assert TOKEN.search(refused.content.decode()).group(1) == token
    assert client.post(path, {**FORMS[path], "form_token": token}).status_code == 302
    assert client.post(path, {**FORMS[path], "form_token": token}).status_code == 302
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize(
    "token", ["", "short", "x" * 43 + "y", "<script>", "a" * 42 + "\u00e9", "a" * 10_000]
)
def test_a_missing_or_malformed_token_turns_the_guard_off_without_an_error(
    client: Client, token: str
) -> None:
    path = "/register/"
    data: dict[str, Any] = {**FORMS[path], "form_token": token}
    assert client.post(path, data).status_code == 302
    assert client.post(path, data).status_code == 302
    assert Ticket.objects.count() == 2
    assert not FormSubmission.objects.exists()


def test_a_failed_submission_does_not_burn_its_token() -> None:
    token = "t" * 43

    def boom() -> str:
        raise RuntimeError("intake failed")

    with pytest.raises(RuntimeError):
        submission_once(token=token, submit=boom)
    assert not FormSubmission.objects.exists()
    assert submission_once(token=token, submit=lambda: "REG-AAAAAAAA") == ("REG-AAAAAAAA", False)
    assert submission_once(token=token, submit=lambda: "REG-BBBBBBBB") == ("REG-AAAAAAAA", True)


def test_only_the_tokens_hash_is_stored_and_old_ones_are_purged() -> None:
    token = "s" * 43
    submission_once(token=token, submit=lambda: "REG-AAAAAAAA")
    row = FormSubmission.objects.get()
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert form_submissions_purge() == 0
    assert form_submissions_purge(now=timezone.now() + timedelta(days=3)) == 1


@override_settings(GUICHET_EMAILS_PER_ADDRESS_PER_HOUR=2)
def test_a_replayed_double_submit_spends_one_unit_of_the_address_e_mail_budget(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """The first POST fails (rolled back, nothing sent) and the member posts the page again: the
    request costs one e-mail of the address's hourly budget, so a second request of the hour is
    still acknowledged. Replays of a stored request cost nothing either."""
    from workflows.services import submissions as views  # the pages' (and API's) submission path

    MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    client = Client(raise_request_exception=False)
    path = "/recover/"
    real_intake = views.request_intake
    calls = {"n": 0}

    def fails_once(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away mid-request")
        return real_intake(**kwargs)

    monkeypatch.setattr(views, "request_intake", fails_once)
    data = {**FORMS[path], "form_token": token_of(client, path)}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(path, data).status_code == 500
        for _ in range(3):  # the retry that stores it, then two replays of the stored request
            assert client.post(path, data).status_code == 302
        fresh = {**FORMS[path], "form_token": token_of(client, path)}
        assert client.post(path, fresh).status_code == 302
    acknowledged = OutboxMessage.objects.filter(
        template=EmailTemplate.ACKNOWLEDGMENT, recipient="zoe@example.org"
    )
    assert acknowledged.count() == 2  # the retried request and the second one: both told
