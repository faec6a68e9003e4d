"""Steps the journeys share, each done over real HTTP as a member or an agent would."""

from __future__ import annotations

import datetime
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.core.management import call_command

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


# --- the machine interface, over real HTTP ----------------------------------------------------


def api_call(
    base_url: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One API request as an insurer's system makes it: status, headers, decoded JSON (or None)."""
    request = urllib.request.Request(  # noqa: S310 (the loopback live server)
        base_url + path, data=body, headers=dict(headers or {}), method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, dict(error.headers), error.read()
    return status, answer_headers, json.loads(raw) if raw else None


def api_token_request(base_url: str, client_id: str, client_secret: str) -> tuple[int, Any]:
    """POST /api/v1/token with the client-credentials form fields: (status, JSON answer)."""
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
    ).encode()
    status, _, answer = api_call(
        base_url,
        "/api/v1/token",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, answer


def api_bearer(base_url: str, client_id: str, client_secret: str) -> dict[str, str]:
    """The headers of an authenticated JSON call (a fresh token for the client)."""
    status, answer = api_token_request(base_url, client_id, client_secret)
    assert status == 200, answer
    return {
        "Authorization": f"Bearer {answer['access_token']}",
        "Content-Type": "application/json",
    }


def api_client_create(name: str, scopes: str) -> dict[str, str]:
    """`manage.py api_client create NAME --scopes ... --json`, as an operator runs it."""
    out = io.StringIO()
    call_command("api_client", "create", name, "--scopes", scopes, "--json", stdout=out)
    credentials: dict[str, str] = json.loads(out.getvalue())
    return credentials
