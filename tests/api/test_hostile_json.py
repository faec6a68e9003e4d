"""JSON that no service can take is a 400 `malformed-body` problem on every endpoint, never a 500.

- A lone UTF-16 surrogate: JSON may escape one (`"\\ud800"`); decoded, it is a string no
  database, log or mailbox can hold. Before the API's parser refused it, the recovery endpoint
  and the registry batch answered 500 (the database driver failed to encode the value).
- Nesting deeper than Python's recursion limit (`[[[[...]]]]`): every JSON endpoint answered 500
  (RecursionError in the decoder).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from members.models import Member
from tests.api.test_submissions import IDENTITY, KINDS

pytestmark = pytest.mark.django_db

MARK = "@@surrogate@@"  # replaced by the six characters \ud800 in the body's JSON text
REGISTRY_ROW = {
    "member_number": "400000001",
    "last_name": "Lefèvre",
    "first_name": "Zoë",
    "birth_date": "1970-05-17",
    "email": "zoe@example.org",
    "coverages": ["health_principal"],
}


def _hostile(body: dict[str, Any], field: str) -> str:
    """`body` as JSON text with a lone surrogate inside the string value of `field`."""
    marked = {**body, field: f"{body.get(field) or 'x'}{MARK}"}
    return json.dumps(marked).replace(MARK, "\\ud800")


def _submission(kind: str) -> dict[str, Any]:
    _page, _form_only, api_only, both = KINDS[kind]
    return {"member_number": "700000001", **IDENTITY, **api_only, **both}


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for kind in KINDS:
        body = _submission(kind)
        for field in body:
            if isinstance(body[field], str):
                cases.append((f"/api/v1/requests/{kind}", body, field))
    for field in ("last_name", "first_name", "email", "member_number"):
        cases.append(("/api/v1/registry/members", REGISTRY_ROW, field))
    cases.append(("/api/v1/webhooks", {"url": "https://hooks.example.org/guichet"}, "url"))
    return cases


@pytest.mark.parametrize(("url", "body", "field"), _cases())
def test_a_lone_surrogate_anywhere_is_a_malformed_body_problem(
    api: Client, url: str, body: dict[str, Any], field: str
) -> None:
    text = _hostile(body, field)
    if url.endswith("/registry/members"):
        text = '{"members": [' + text + "]}"
    response = api.post(url, text, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/malformed-body")
    assert "surrogate" in problem["detail"]


def test_a_surrogate_pair_is_one_character_and_is_stored(api: Client) -> None:
    text = json.dumps({"members": [{**REGISTRY_ROW, "first_name": "Zoë😀"}]}, ensure_ascii=True)
    assert "\\ud83d\\ude00" in text  # the emoji travels as a pair of escapes
    response = api.post("/api/v1/registry/members", text, content_type="application/json")
    assert response.status_code == 200, response.content
    assert Member.objects.get(member_number="400000001").first_name == "Zoë😀"


JSON_ENDPOINTS = [
    *(f"/api/v1/requests/{kind}" for kind in KINDS),
    "/api/v1/registry/members",
    "/api/v1/webhooks",
]


@pytest.mark.parametrize("url", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"members": ' + "[" * 50_000 + "]" * 50_000 + "}"],
    ids=["array", "in-an-object"],
)
def test_runaway_nesting_is_a_malformed_body_problem(api: Client, url: str, body: str) -> None:
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    problem = response.json()
    assert problem["type"].endswith("/malformed-body")
    assert "nests" in problem["detail"]


def test_reasonable_nesting_is_still_read(api: Client) -> None:
    response = api.post(
        "/api/v1/registry/members",
        json.dumps({"members": [REGISTRY_ROW], "note": [[[["deep but fine"]]]]}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
