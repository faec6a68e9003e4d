"""Steps the journeys share, each done over real HTTP as a member or an agent would."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from members.models import Account, Member
from tests.integration.harness import HttpClient, Response
from tests.second_factor import fresh_code

REFERENCE_IN_PATH = re.compile(r"^/requests/([A-Z]{3}-[0-9A-HJKMNP-TV-Z]{8})/$")


def registration_data(
    member: Member | None = None,
    *,
    email: str,
    secret_answer: str = "Ébène the cat",  # noqa: S107  (a test answer)
    **overrides: str,
) -> dict[str, str]:
    """The registration form as a member fills it in, from the registry entry (or overrides)."""
    data = {
        "member_number": member.member_number if member else "",
        "nir": "",
        "last_name": member.last_name if member else "",
        "first_name": member.first_name if member else "",
        "birth_date": member.birth_date.strftime("%d/%m/%Y")
        if member
        else datetime.date(1970, 1, 1).strftime("%d/%m/%Y"),
        "email": email,
        "secret_question": "first_pet",
        "secret_answer": secret_answer,
        "accept_terms": "on",
    }
    data.update(overrides)
    return data


def register(client: HttpClient, data: Mapping[str, str]) -> str:
    """Submit /register/ like a browser; return the reference of the status page it lands on."""
    response = client.submit("/register/", data)
    assert response.status == 200, response.status
    match = REFERENCE_IN_PATH.match(response.path)
    assert match, f"registration refused at {response.path}: {page_errors(response)}"
    return match.group(1)


def page_errors(response: Response) -> list[str]:
    """The error texts a page shows (error summary and field errors), to explain a failed step."""
    blocks = re.findall(
        r'<(?:div|p)[^>]*class="(?:error|error-summary|form-errors)"[^>]*>(.*?)</(?:div|p)>',
        response.text,
        flags=re.S,
    )
    texts = (" ".join(re.sub(r"<[^>]+>", " ", block).split()) for block in blocks)
    return [text for text in texts if text]


def desk_login(client: HttpClient, username: str, password: str) -> Response:
    """Log in at /desk/login/, then type the authenticator's code; the agent lands on the queue.

    The account gets an authenticator with the tests' known key if it has none
    (tests/second_factor.py).
    """
    account = Account.objects.get(username=username)
    response = client.submit("/desk/login/", {"username": username, "password": password})
    assert response.path == "/desk/second-factor/", (
        f"desk login failed: {response.status} {response.path}"
    )
    response = client.submit(response.url, {"otp_token": fresh_code(account)})
    assert response.path == "/desk/", f"second factor failed: {response.status} {response.path}"
    return response


def desk_action(
    client: HttpClient, reference: str, action: str, data: Mapping[str, str] | None = None
) -> Response:
    """Press one action button on the ticket page (the form posting to .../<action>/)."""
    page = f"/desk/tickets/{reference}/"
    response = client.submit(page, data or {}, action=f"{page}{action}/")
    assert response.status == 200, response.status
    assert response.path == page, response.path
    return response


def member_login(client: HttpClient, member_id: str, password: str) -> Response:
    """Submit /login/ with member ID and password; return where the browser ends up."""
    return client.submit("/login/", {"username": member_id, "password": password})
