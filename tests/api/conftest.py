"""API fixtures: a client with every scope and a bearer token for it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from api.clients import Credentials, client_create

FORM = "application/x-www-form-urlencoded"
ALL_SCOPES = ["events:read", "registry:write", "requests:read", "requests:write"]


@pytest.fixture
def credentials(db: None) -> Credentials:
    return client_create(name="crm", scopes=ALL_SCOPES)


def token_for(client: Client, credentials: Credentials) -> str:
    response = client.post(
        "/api/v1/token",
        urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            }
        ),
        content_type=FORM,
    )
    assert response.status_code == 200, response.content
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def api(credentials: Credentials) -> Client:
    """A test client that sends the bearer token and JSON."""
    client = Client()
    token = token_for(client, credentials)
    return Client(headers={"Authorization": f"Bearer {token}"})
