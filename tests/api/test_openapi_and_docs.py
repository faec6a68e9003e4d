"""The OpenAPI 3.1 document and its documentation page, served from our own files under our CSP."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from core.middleware import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db


def test_the_openapi_document_is_3_1_and_lists_every_operation(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"] == "3.1.0"
    assert set(schema["paths"]) == {
        "/api/v1/token",
        "/api/v1/requests/registration",
        "/api/v1/requests/recovery",
        "/api/v1/requests/email-change",
        "/api/v1/requests/closure",
        "/api/v1/requests/access-problem",
        "/api/v1/requests/{reference}",
        "/api/v1/events",
        "/api/v1/registry/members",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{subscription_id}",
        "/api/v1/webhooks/{subscription_id}/deliveries",
    }
    scheme = schema["components"]["securitySchemes"]["oauth2"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/api/v1/token"


def test_every_error_answer_is_documented_as_a_problem(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code, answer in operation["responses"].items():
                if code.startswith(("4", "5")):
                    ref = answer["content"]["application/problem+json"]["schema"]["$ref"]
                    assert ref.endswith("/Problem"), f"{method} {path} {code}"


def test_the_docs_page_loads_only_local_assets_without_inline_code(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    html = response.content.decode()
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


def test_the_docs_init_script_is_served_as_a_script(client: Client) -> None:
    response = client.get("/api/v1/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "/api/v1/openapi.json" in response.content.decode()
