"""docs/security.md §31: hostile input on public forms and desk actions never gives a 5xx.

Hypothesis runs 1,000 examples per form under CI=true (profile "ci"), 40 locally ("dev").
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from members.models import Account
from tests.factories import TicketFactory
from tests.second_factor import staff_login
from tickets.models import Ticket, TicketEvent

hsettings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck)
)
hsettings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=list(HealthCheck)
)
hsettings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")

CORPUS = [
    "Zoë",
    "Nguyễn",
    "O'Brien-Łukasz",
    "e\u0301le\u0300ve",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "😀",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR 1=1 --",
    "Robert'); DROP TABLE tickets_ticket;--",
    "a\r\nBcc: victim@example.org",
    "x\x00y",
    "A" * 10_000,
    "30/02/1990",
    "2A0000000000000",
    "\ufffd",
]
text = st.one_of(st.sampled_from(CORPUS), st.text(max_size=300))

REGISTER_FIELDS = ["member_number", "nir", "last_name", "first_name", "birth_date", "email"]


def _no_server_error(response: object) -> None:
    assert response.status_code < 500, response.status_code  # type: ignore[attr-defined]


@pytest.mark.django_db
@given(values=st.fixed_dictionaries(dict.fromkeys(REGISTER_FIELDS, text)))
def test_register_never_fails_with_hostile_values(values: dict[str, str]) -> None:
    response = Client(raise_request_exception=False).post(
        "/register/", {**values, "secret_question": "first_pet", "secret_answer": "x"}
    )
    _no_server_error(response)
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "onerror=alert(1)>" not in body


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/register/", "/recover/", "/support/", "/login/"])
@pytest.mark.parametrize("value", CORPUS)
def test_public_forms_answer_the_corpus_without_5xx(path: str, value: str) -> None:
    data = dict.fromkeys([*REGISTER_FIELDS, "username", "password", "message"], value)
    response = Client(raise_request_exception=False).post(path, data)
    _no_server_error(response)


@pytest.mark.django_db
@given(body=text, reason=text)
def test_desk_actions_never_fail_with_hostile_values(
    body: str, reason: str, agent: Account
) -> None:
    ticket = TicketFactory()
    client = Client(raise_request_exception=False)
    staff_login(client, agent)
    for action in ("note", "reject", "flag-mismatch"):
        response = client.post(
            f"/desk/tickets/{ticket.reference}/{action}/",
            {"body": body, "reason": reason, "comment": body},
        )
        _no_server_error(response)
    page = client.get(f"/desk/tickets/{ticket.reference}/")
    _no_server_error(page)
    assert "<script>alert(1)</script>" not in page.content.decode()


@pytest.mark.django_db
def test_a_note_round_trips_unchanged_and_escaped(agent: Account) -> None:
    ticket = TicketFactory(submitted_last_name="Nguyễn", submitted_first_name="Zoë")
    client = Client()
    staff_login(client, agent)
    note = "O'Brien-Łukasz <script>alert(1)</script>"
    client.post(f"/desk/tickets/{ticket.reference}/note/", {"body": note})
    assert TicketEvent.objects.filter(ticket=ticket, kind="note").get().body == note
    page = client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "O&#x27;Brien-Łukasz" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/requests/REG-\x00AAAAAAA/", "/desk/tickets/REG-AAAA%00AAA/", "/register/?q=%00"],
)
def test_nul_bytes_in_paths_and_query_strings_are_refused_cleanly(
    path: str, agent: Account
) -> None:
    client = Client(raise_request_exception=False)
    staff_login(client, agent)
    _no_server_error(client.get(path))


@pytest.mark.django_db
def test_too_many_fields_is_a_clean_400() -> None:
    data = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 10)}
    response = Client(raise_request_exception=False).post("/register/", data)
    assert response.status_code == 400
    assert "Traceback" not in response.content.decode()
    assert Ticket.objects.count() == 0


@pytest.mark.django_db
def test_a_body_over_the_upload_limit_is_a_clean_400() -> None:
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = Client(raise_request_exception=False).post("/register/", {"last_name": big})
    assert response.status_code == 400
    assert "Traceback" not in response.content.decode()
    assert Ticket.objects.count() == 0


@pytest.mark.django_db
def test_invalid_utf8_in_a_form_body_is_not_a_5xx() -> None:
    response = Client(raise_request_exception=False).post(
        "/register/",
        b"last_name=%ff%fe&first_name=\xff\xfe",
        content_type="application/x-www-form-urlencoded",
    )
    _no_server_error(response)
