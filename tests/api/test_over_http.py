"""The API over real HTTP (loopback live server): token, submission, status, feed, revocation."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from api.clients import client_revoke
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _call(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@override_settings(GUICHET_API_EVENTS_SETTLE_SECONDS=0)
def test_a_client_submits_follows_reads_the_feed_and_is_refused_once_revoked(
    live_server: Any,
) -> None:
    from io import StringIO

    MemberFactory(member_number="720000001", last_name="Martin", first_name="Zoë")
    out = StringIO()
    call_command(
        "api_client",
        "create",
        "portal",
        "--scopes",
        "requests:write,requests:read,events:read",
        "--json",
        stdout=out,
    )
    credentials = json.loads(out.getvalue())
    basic = base64.b64encode(
        f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    ).decode()
    status, _, token = _call(
        f"{live_server.url}/api/v1/token",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 200
    bearer = {
        "Authorization": f"Bearer {token['access_token']}",
        "Content-Type": "application/json",
    }
    body = {
        "member_number": "720000001",
        "last_name": "MARTIN",
        "first_name": "Zoe",
        "birth_date": "1980-04-12",
        "email": "zoe@example.org",
        "secret_question": "first_pet",
        "secret_answer": "Caramel",
        "accept_terms": True,
    }
    status, _, accepted = _call(
        f"{live_server.url}/api/v1/requests/registration",
        data=json.dumps(body).encode(),
        headers=bearer,
    )
    assert status == 202
    status, _, public = _call(live_server.url + accepted["status_url"], headers=bearer)
    assert (status, public["status"], public["kind"]) == (200, "in_review", "REG")
    status, _, feed = _call(f"{live_server.url}/api/v1/events", headers=bearer)
    assert status == 200
    assert {e["reference"] for e in feed["events"]} == {accepted["reference"]}
    assert feed["events"][0]["member_number"] == "720000001"

    client_revoke(client_id=credentials["client_id"])
    status, headers, problem = _call(f"{live_server.url}/api/v1/events", headers=bearer)
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["type"].endswith("/unauthenticated")
