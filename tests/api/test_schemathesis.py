"""Schemathesis against the running app over real HTTP (pytest-django's live server), with a token.

Every operation of the OpenAPI document gets generated requests (valid and invalid); each answer
must not be a 5xx, must use a documented status code and content type, and must match its schema.
Examples per operation: SCHEMATHESIS_EXAMPLES, else 200 in CI (CI=true, as `.ci/run` sets it: the
issue's "at least 200 examples each") and 15 on a developer's machine, for a quick run (README).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest
import schemathesis
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.clients import client_create
from tests.api.conftest import ALL_SCOPES, token_for

pytestmark = pytest.mark.django_db(transaction=True)

CI_EXAMPLES, QUICK_EXAMPLES = 200, 15


def examples_per_operation(environ: Mapping[str, str]) -> int:
    """SCHEMATHESIS_EXAMPLES if set; else 200 in CI (CI=true), 15 for a developer's quick run."""
    if environ.get("SCHEMATHESIS_EXAMPLES", "").strip():
        return int(environ["SCHEMATHESIS_EXAMPLES"])
    # The same reading of CI as tests/integration/harness.py's in_ci.
    in_ci = environ.get("CI", "").strip().lower() in ("true", "1", "yes")
    return CI_EXAMPLES if in_ci else QUICK_EXAMPLES


EXAMPLES = examples_per_operation(os.environ)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


OPERATIONS = [
    "POST /api/v1/token",
    "POST /api/v1/requests/registration",
    "POST /api/v1/requests/recovery",
    "POST /api/v1/requests/email-change",
    "POST /api/v1/requests/closure",
    "POST /api/v1/requests/access-problem",
    "GET /api/v1/requests/{reference}",
    "GET /api/v1/events",
    "POST /api/v1/registry/members",
    "POST /api/v1/webhooks",
    "GET /api/v1/webhooks",
    "DELETE /api/v1/webhooks/{subscription_id}",
    "GET /api/v1/webhooks/{subscription_id}/deliveries",
]


@pytest.fixture
def document(live_server: Any) -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    body: dict[str, Any] = response.json()
    return body


# Private targets allowed: generated URLs must not send the test resolving names on the Internet
# (the SSRF guard has its own tests in test_webhooks.py).
@override_settings(GUICHET_API_CALLS_PER_MINUTE=100_000, GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_conforms_to_its_schema(
    operation: str, document: dict[str, Any], live_server: Any
) -> None:
    credentials = client_create(name=f"schemathesis-{operation}", scopes=ALL_SCOPES)
    token = token_for(Client(), credentials)
    schema = schemathesis.openapi.from_dict(document)
    method, path = operation.split(" ")
    api_operation = schema[path][method]
    headers = {"Authorization": f"Bearer {token}"}

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=api_operation.as_strategy())
    def conforms(case: Any) -> None:
        case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

    conforms()


def test_the_operations_above_are_the_whole_document(document: dict[str, Any]) -> None:
    operations = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    assert len(operations) == len(OPERATIONS)


def test_ci_runs_200_examples_per_operation_and_a_developer_15() -> None:
    assert examples_per_operation({"CI": "true"}) == 200
    assert examples_per_operation({"CI": "TRUE"}) == 200
    assert examples_per_operation({"CI": "1"}) == 200
    assert examples_per_operation({}) == 15
    assert examples_per_operation({"CI": "false"}) == 15
    assert examples_per_operation({"CI": "true", "SCHEMATHESIS_EXAMPLES": "500"}) == 500
    assert examples_per_operation({"SCHEMATHESIS_EXAMPLES": "3"}) == 3
