"""API clients: secrets shown once and hashed; client-credentials tokens; scopes; limits; audit."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from api.clients import Credentials, client_create, client_revoke, client_rotate
from api.models import ApiClient, ApiToken
from tests.api.conftest import FORM, token_for

pytestmark = pytest.mark.django_db


def _token_post(client: Client, **fields: str) -> tuple[int, dict[str, object], str]:
    response = client.post("/api/v1/token", urlencode(fields), content_type=FORM)
    return response.status_code, response.json(), response["Content-Type"]


def test_create_prints_the_secret_once_and_stores_only_its_digest() -> None:
    out = StringIO()
    call_command(
        "api_client",
        "create",
        "crm",
        "--scopes",
        "requests:write,events:read",
        "--json",
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    client = ApiClient.objects.get(client_id=printed["client_id"])
    assert client.scopes == ["events:read", "requests:write"]
    assert printed["client_secret"] not in json.dumps(list(ApiClient.objects.values()), default=str)
    listing = StringIO()
    call_command("api_client", "list", stdout=listing)
    assert printed["client_id"] in listing.getvalue()
    assert printed["client_secret"] not in listing.getvalue()


def test_an_unknown_scope_is_refused() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("api_client", "create", "crm", "--scopes", "admin:all", stdout=StringIO())
    assert not ApiClient.objects.exists()


def test_a_token_by_form_fields_is_short_lived_and_hashed_at_rest(
    client: Client, credentials: Credentials
) -> None:
    status, body, _ = _token_post(
        client,
        grant_type="client_credentials",
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
    )
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    token = str(body["access_token"])
    row = ApiToken.objects.get()
    assert token not in row.token_hash
    assert row.expires_at <= timezone.now() + timedelta(seconds=900)


def test_a_token_by_http_basic(client: Client, credentials: Credentials) -> None:
    basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode())
    response = client.post(
        "/api/v1/token",
        "grant_type=client_credentials",
        content_type=FORM,
        headers={"Authorization": f"Basic {basic.decode()}"},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_a_wrong_secret_and_an_unknown_client_get_the_same_problem(
    client: Client, credentials: Credentials
) -> None:
    wrong = _token_post(
        client, grant_type="client_credentials", client_id=credentials.client_id, client_secret="x"
    )
    unknown = _token_post(
        client, grant_type="client_credentials", client_id="gc_nobody", client_secret="x"
    )
    assert wrong == unknown
    assert wrong[0] == 401
    assert wrong[2] == "application/problem+json"
    assert wrong[1]["type"] == "https://guichet.example.org/problems/invalid-client"


def test_another_grant_type_is_refused(client: Client, credentials: Credentials) -> None:
    status, body, content_type = _token_post(client, grant_type="password")
    assert (status, body["error"], content_type) == (
        400,
        "unsupported_grant_type",
        "application/problem+json",
    )


def test_the_old_secret_works_during_the_grace_period_only(
    client: Client, credentials: Credentials
) -> None:
    new = client_rotate(client_id=credentials.client_id)
    assert token_for(client, new)
    assert token_for(client, credentials)  # still within the grace period
    ApiClient.objects.update(previous_valid_until=timezone.now() - timedelta(seconds=1))
    status, _, _ = _token_post(
        client,
        grant_type="client_credentials",
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
    )
    assert status == 401
    assert token_for(client, new)


def test_a_revoked_client_is_refused_at_once_even_with_a_live_token(
    api: Client, credentials: Credentials, client: Client
) -> None:
    assert api.get("/api/v1/events").status_code == 200
    client_revoke(client_id=credentials.client_id)
    refused = api.get("/api/v1/events")
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/problem+json"
    status, _, _ = _token_post(
        client,
        grant_type="client_credentials",
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
    )
    assert status == 401


def test_an_expired_token_is_refused(api: Client) -> None:
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/v1/events").status_code == 401


def test_a_token_without_the_scope_gets_403(client: Client) -> None:
    reader = client_create(name="fraud-engine", scopes=["events:read"])
    token = token_for(client, reader)
    response = client.post(
        "/api/v1/requests/registration",
        {},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["type"] == "https://guichet.example.org/problems/insufficient-scope"


def test_each_client_has_its_own_rate_limit_with_retry_after(client: Client) -> None:
    slow = client_create(name="slow", scopes=["events:read"], calls_per_minute=3)
    other = client_create(name="other", scopes=["events:read"], calls_per_minute=3)
    slow_headers = {"Authorization": f"Bearer {token_for(client, slow)}"}
    other_headers = {"Authorization": f"Bearer {token_for(client, other)}"}
    codes = [client.get("/api/v1/events", headers=slow_headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/api/v1/events", headers=slow_headers)
    assert limited["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert client.get("/api/v1/events", headers=other_headers).status_code == 200


@override_settings(GUICHET_API_CALLS_PER_MINUTE=1000)
def test_every_call_is_audited_with_the_client_id(
    api: Client, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="guichet.api"):
        api.get("/api/v1/events")
        api.post("/api/v1/requests/closure", {}, content_type="application/json")
    lines = [r.getMessage() for r in caplog.records if r.name == "guichet.api"]
    assert (
        f"api call client={credentials.client_id} method=GET path=/api/v1/events status=200"
        in lines
    )
    assert any(
        line.startswith(f"api call client={credentials.client_id} method=POST") and "400" in line
        for line in lines
    )
