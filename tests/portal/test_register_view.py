"""The registration page: form, field errors, the request it records and its neutral answer."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from members.models import CoverageKind
from tests.factories import MemberAccountFactory, MemberFactory
from tests.requests import registration_form
from tickets.models import EventKind, MatchResult, Ticket, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage

pytestmark = pytest.mark.django_db


REFERENCE = re.compile(r"REG-[0-9A-HJKMNP-TV-Z]{8}")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def form(**overrides: Any) -> dict[str, Any]:
    return registration_form(**overrides)


@pytest.fixture
def registry() -> None:
    MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")


def test_the_form_shows_every_contract_field(client: Client) -> None:
    response = client.get("/register/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in (
        "member_number",
        "nir",
        "last_name",
        "first_name",
        "birth_date",
        "email",
        "secret_question",
        "secret_answer",
        "accept_terms",
    ):
        assert f'name="{name}"' in html, name
    assert "csrfmiddlewaretoken" in html


def test_a_valid_request_redirects_to_its_status_page_and_acknowledges_once(
    client: Client, registry: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/register/", form(email="Zoe.Typed@Example.org"))
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{ticket.reference}/"
    assert REFERENCE.fullmatch(ticket.reference)
    assert (ticket.kind, ticket.state, ticket.match_result) == (
        TicketKind.REGISTRATION,
        TicketState.PENDING,
        MatchResult.MATCH,
    )
    # Exactly one outbox row, dispatched after commit, sent once to the address typed.
    [row] = OutboxMessage.objects.all()
    assert (row.template, row.ticket, row.recipient) == (
        EmailTemplate.ACKNOWLEDGMENT,
        ticket,
        "Zoe.Typed@Example.org",
    )
    assert len(callbacks) == 1
    [email] = mail.outbox
    assert email.to == ["Zoe.Typed@Example.org"]
    assert ticket.reference in email.subject
    assert ticket.reference in email.body
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html" and ticket.reference in html
    row.refresh_from_db()
    assert row.status == "sent"


def test_the_secret_answer_is_stored_only_as_a_hash(client: Client, registry: None) -> None:
    client.post("/register/", form(secret_answer="Caramel Mou"))
    ticket = Ticket.objects.get()
    assert ticket.secret_question == "first_pet"
    assert "Caramel" not in ticket.secret_answer_hash
    assert ticket.secret_answer_hash.startswith(("md5$", "argon2"))


def test_a_request_without_member_id_uses_the_nir(client: Client) -> None:
    MemberFactory(
        member_number="100200303",
        nir="148032A00100112",
        last_name="Nguyễn",
        first_name="Thị Lan",
        birth_date=datetime.date(1948, 3, 5),
        coverages=[CoverageKind.RETIREE],
    )
    response = client.post(
        "/register/",
        form(
            member_number="",
            nir="1 48 03 2A 001 001 12",
            last_name="Nguyễn",
            first_name="Thị Lan",
            birth_date="1948-03-05",
        ),
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.submitted_nir == "148032A00100112"
    assert ticket.match_result == MatchResult.MATCH


# --- bad input: a clear field error, status 200, nothing recorded ------------------------------

BAD_INPUTS = {
    "bad_nir_key": (
        {"member_number": "", "nir": "180017512345661"},
        "here they do not match",
    ),
    "impossible_date": ({"birth_date": "30/02/1990"}, "Enter a real date"),
    "future_date": (
        {"birth_date": (timezone.localdate() + datetime.timedelta(days=2)).isoformat()},
        "A birth date cannot be in the future.",
    ),
    "missing_identifier": (
        {"member_number": "", "nir": ""},
        "Give your member ID or, if you do not have one, your social-security number.",
    ),
    "terms_not_accepted": ({"accept_terms": None}, "You must accept the terms of use"),
    "nul_in_name": ({"last_name": "Mar\x00tin"}, "Null characters are not allowed."),
    "nul_in_answer": ({"secret_answer": "Cara\x00mel"}, "Null characters are not allowed."),
    "nul_in_email": ({"email": "zoe\x00@example.org"}, "Null characters are not allowed."),
    "nul_in_date": ({"birth_date": "12/04\x00/1980"}, "Enter a real date"),
    "huge_name": ({"first_name": "Z" * 10_000}, "at most 150 characters"),
    "script_in_name": (
        {"last_name": "<script>alert(1)</script>"},
        "Use only letters, spaces, hyphens and apostrophes.",
    ),
    "crlf_in_email": (
        {"email": "zoe@example.org\r\nBcc: victim@example.org"},
        "Enter a valid email address.",
    ),
    "bad_member_id": ({"member_number": "12"}, "A member ID has 4 to 20 letters and digits"),
    "missing_email": ({"email": ""}, "This field is required."),
    "unknown_question": ({"secret_question": "mothers_maiden_name"}, "Select a valid choice."),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_field_error_never_a_500(
    client: Client, registry: None, case: str, django_capture_on_commit_callbacks: Any
) -> None:
    overrides, message = BAD_INPUTS[case]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/register/", form(**overrides), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "<script>alert" not in html
    assert not Ticket.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert mail.outbox == []


def test_typed_values_are_kept_in_the_form_after_an_error(client: Client) -> None:
    response = client.post(
        "/register/",
        form(birth_date="30/02/1990", last_name="O'Brien-Łukasz"),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    html = response.content.decode()
    assert 'value="O&#x27;Brien-Łukasz"' in html


@pytest.mark.parametrize(
    ("last_name", "first_name"),
    [("Martin", "Zoë"), ("Nguyễn", "Thị Lan"), ("O'Brien-Łukasz", "Anne-Sophie")],
)
def test_names_round_trip_unchanged(client: Client, last_name: str, first_name: str) -> None:
    response = client.post("/register/", form(last_name=last_name, first_name=first_name))
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.submitted_last_name, ticket.submitted_first_name) == (last_name, first_name)


def test_inner_spaces_are_collapsed_but_letters_untouched(client: Client) -> None:
    client.post("/register/", form(last_name="  Le   Guen ", first_name="Zoë"))
    assert Ticket.objects.get().submitted_last_name == "Le Guen"


def test_the_member_id_is_stored_upper_case(client: Client) -> None:
    client.post("/register/", form(member_number="ab1234"))
    assert Ticket.objects.get().submitted_member_number == "AB1234"


# --- language -------------------------------------------------------------------------------


def test_french_by_default_english_on_request(client: Client, registry: None) -> None:
    assert '<html lang="fr">' in client.get("/register/").content.decode()
    english = client.get("/register/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="en">' in english.content.decode()
    assert "Activate my account" in english.content.decode()


def test_the_request_remembers_the_language(client: Client, registry: None) -> None:
    MemberFactory(member_number="100200399")
    client.post("/register/", form(), HTTP_ACCEPT_LANGUAGE="en")
    client.post("/register/", form(member_number="100200399", email="other@example.org"))
    languages = dict(Ticket.objects.values_list("submitted_email", "language"))
    assert languages == {"zoe@example.org": "en", "other@example.org": "fr"}


def test_the_acknowledgment_is_in_the_language_of_the_page(
    client: Client, registry: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/register/", form(), HTTP_ACCEPT_LANGUAGE="en")
    [email] = mail.outbox
    [(html, _mimetype)] = email.alternatives
    assert '<html lang="en">' in html
    assert "We have received your request." in email.body


def test_only_get_and_post(client: Client) -> None:
    assert client.put("/register/").status_code == 405
    assert client.delete("/register/").status_code == 405


# --- neutral answers (docs/security.md §1, docs/product.md §3) ----------------------------------

FIXED_CREATED_AT = datetime.datetime(2025, 1, 6, 9, 30, tzinfo=datetime.UTC)


def _masked(text: str, *secrets_of_the_case: str) -> str:
    """Hide what legitimately differs between two submissions: reference, typed ID, address."""
    for value in secrets_of_the_case:
        text = text.replace(value, "…")
    return CSRF.sub('name="csrfmiddlewaretoken" value="…"', text)


def _what_the_member_sees(
    client: Client, data: dict[str, Any], capture: Any
) -> tuple[dict[str, Any], str]:
    """Submit once; return all the member gets (page and e-mail), with the case's values masked."""
    mail.outbox.clear()
    with capture(execute=True):
        posted = client.post("/register/", data)
    reference = posted["Location"].split("/")[2]
    ticket = Ticket.objects.get(reference=reference)
    # The page shows the time of receipt; pin it so only the verdict could differ.
    Ticket.objects.filter(pk=ticket.pk).update(created_at=FIXED_CREATED_AT)
    page = client.get(posted["Location"])
    [email] = mail.outbox
    [(html, _mimetype)] = email.alternatives
    case = (reference, data["email"], data["member_number"])
    headers = {k: v for k, v in email.extra_headers.items() if k != "X-Guichet-Message"}
    seen = {
        "post_status": posted.status_code,
        "location": _masked(posted["Location"], *case),
        "post_body": posted.content,
        "page_status": page.status_code,
        "page": _masked(page.content.decode(), *case),
        "to": [_masked(to, *case) for to in email.to],
        "from": email.from_email,
        "subject": _masked(email.subject, *case),
        "text": _masked(email.body, *case),
        "html": _masked(html, *case),
        "headers": headers,
    }
    return seen, ticket.match_result


def test_every_verdict_gets_the_same_page_and_e_mail(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """The member types the same identity each time; only what the registry holds differs."""
    MemberFactory(member_number="300000001", last_name="Martin")
    MemberFactory(member_number="300000004", last_name="Marttin")  # a one-letter difference
    MemberFactory(member_number="300000002", coverages=[CoverageKind.HEALTH_BENEFICIARY])
    MemberAccountFactory(member=MemberFactory(member_number="300000003"))
    cases = {
        "exact_match": ("300000001", MatchResult.MATCH),
        "name_typo": ("300000004", MatchResult.MISMATCH),
        "unknown_id": ("399999999", MatchResult.NOT_FOUND),
        "beneficiary": ("300000002", MatchResult.NOT_ELIGIBLE),
        "existing_account": ("300000003", MatchResult.ALREADY_REGISTERED),
    }
    seen = {}
    for name, (number, expected) in cases.items():
        data = form(member_number=number, email=f"{name}@example.org")
        seen[name], verdict = _what_the_member_sees(
            client, data, django_capture_on_commit_callbacks
        )
        assert verdict == expected, name  # the cases really differ behind the scenes
    reference_view = seen["exact_match"]
    assert "Martin" in reference_view["text"]  # the greeting echoes the typed name
    for name, view in seen.items():
        assert view == reference_view, name
    # The registry's spelling never reaches the member.
    assert all(
        "Marttin" not in view["text"] + view["html"] + view["page"] for view in seen.values()
    )
    states = dict(Ticket.objects.values_list("match_result", "state"))
    assert states.pop(MatchResult.MATCH) == TicketState.PENDING
    assert set(states.values()) == {TicketState.IDENTITY_MISMATCH}
    assert Ticket.objects.filter(events__kind=EventKind.CREATED).count() == 5
