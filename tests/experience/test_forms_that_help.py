"""Forms explain themselves: hints and errors tied to their fields, typed data kept."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.test import Client

from tests.factories import MemberAccountFactory, TicketFactory
from tests.requests import registration_form

pytestmark = pytest.mark.django_db

# A valid NIR body with a wrong key: the NIR validator explains the key, not "invalid".
WRONG_KEY_NIR = "1 50 01 75 056 001 00"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cache.clear()
    caches["limits"].clear()


def registration(**overrides: Any) -> dict[str, Any]:
    defaults = {
        "member_number": "",
        "last_name": "O'Brien-Nguyễn",
        "birth_date": "31/01/1950",
    }
    return registration_form(**{**defaults, **overrides})


def input_tag(html: str, name: str) -> str:
    match = re.search(rf'<(?:input|select|textarea)[^>]*name="{name}"[^>]*>', html)
    assert match, f"no field {name}"
    return match.group(0)


def test_hints_say_where_the_member_id_is_and_the_date_format(client: Client) -> None:
    html = client.get("/register/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "third-party-payment card" in html
    assert "DD/MM/YYYY" in html
    # Each hint is tied to its input, so a screen reader reads it with the field.
    for name in ("member_number", "birth_date"):
        tag = input_tag(html, name)
        assert f'aria-describedby="id_{name}_helptext"' in tag
        assert f'id="id_{name}_helptext"' in html


def test_inputs_declare_their_purpose_for_autofill(client: Client) -> None:
    html = client.get("/register/").content.decode()
    assert 'autocomplete="family-name"' in input_tag(html, "last_name")
    assert 'autocomplete="given-name"' in input_tag(html, "first_name")
    assert 'autocomplete="bday"' in input_tag(html, "birth_date")
    assert 'autocomplete="email"' in input_tag(html, "email")
    assert 'autocomplete="off"' in input_tag(html, "secret_answer")
    login = client.get("/login/").content.decode()
    assert 'autocomplete="current-password"' in input_tag(login, "password")


def test_a_wrong_nir_key_is_explained_beside_the_field(client: Client) -> None:
    response = client.post("/register/", registration(nir=WRONG_KEY_NIR), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    tag = input_tag(html, "nir")
    assert 'aria-invalid="true"' in tag
    assert "id_nir_error" in re.search(r'aria-describedby="([^"]+)"', tag).group(1)
    error = re.search(r'<div class="error" id="id_nir_error">(.*?)</div>', html, re.S).group(1)
    assert "one digit was probably mistyped" in error
    # The summary at the top names the problem and links to the field.
    assert 'role="alert"' in html
    assert 'href="#id_nir"' in html


def test_typed_data_is_kept_when_the_form_comes_back_with_an_error(client: Client) -> None:
    response = client.post("/register/", registration(nir=WRONG_KEY_NIR))
    html = response.content.decode()
    assert 'value="O&#x27;Brien-Nguyễn"' in input_tag(html, "last_name")
    assert 'value="Zoë"' in input_tag(html, "first_name")
    assert 'value="31/01/1950"' in input_tag(html, "birth_date")
    assert 'value="zoe@example.org"' in input_tag(html, "email")
    assert re.search(r'<option value="first_pet"[^>]*selected', html)
    assert "checked" in input_tag(html, "accept_terms")


def test_a_password_is_never_sent_back_into_the_page(client: Client) -> None:
    response = client.post("/login/", {"username": "ABC123", "password": "typed secret 42"})
    html = response.content.decode()
    assert 'value="ABC123"' in input_tag(html, "username")
    assert "typed secret 42" not in html


def test_a_password_change_with_errors_keeps_no_password(client: Client) -> None:
    account = MemberAccountFactory()
    client.force_login(account)
    response = client.post(
        "/account/password/",
        {
            "old_password": "a long member passphrase",
            "new_password1": "short",
            "new_password2": "short",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "a long member passphrase" not in html
    assert 'value="short"' not in html
    assert 'aria-invalid="true"' in html


def test_error_ids_are_unique_when_a_field_has_several_errors(client: Client) -> None:
    response = client.post("/register/", {})
    html = response.content.decode()
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate id attributes"


def test_the_status_page_shows_the_reference_large_with_keep_it(client: Client) -> None:
    ticket = TicketFactory()
    html = client.get(f"/requests/{ticket.reference}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'<p class="reference">{ticket.reference}</p>' in html
    assert "Keep it" in html
