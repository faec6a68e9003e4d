"""API submissions do what the forms do: same fields, validation, neutral answer, limits, work."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from members.models import CoverageKind
from members.secret_answers import secret_answer_hash
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import Ticket, TicketState
from workflows.models import OutboxMessage

pytestmark = pytest.mark.django_db

IDENTITY = {
    "last_name": "Martin",
    "first_name": "Zoë",
    "birth_date": "12/04/1980",
    "email": "typed@example.org",
}
# endpoint -> (form page, form-only fields, API-only fields, fields of both)
KINDS: dict[str, tuple[str, dict[str, str], dict[str, str], dict[str, Any]]] = {
    "registration": (
        "/register/",
        {"accept_terms": "on"},
        {"accept_terms": "true"},
        {"secret_question": "first_pet", "secret_answer": "Caramel"},
    ),
    "recovery": (
        "/recover/",
        {"email_lost": "on"},
        {"email_lost": "true"},
        {"new_email": "new@example.org", "secret_answer": "Caramel"},
    ),
    "email-change": (
        "/support/",
        {"topic": "email_changed"},
        {},
        {"new_email": "new@example.org", "message": "My address changed."},
    ),
    "closure": ("/support/", {"topic": "close_account"}, {}, {"message": "Please close it."}),
    "access-problem": (
        "/support/",
        {"topic": "codes_never_received"},
        {"topic": "codes_never_received"},
        {"message": "Nothing came."},
    ),
}


@pytest.fixture
def registry() -> None:
    answer = secret_answer_hash("Caramel")
    MemberAccountFactory(member=MemberFactory(member_number="700000001"), secret_answer_hash=answer)
    MemberAccountFactory(member=MemberFactory(member_number="700000002"), secret_answer_hash=answer)
    MemberFactory(member_number="700000003", coverages=[CoverageKind.HEALTH_BENEFICIARY])
    MemberFactory(member_number="700000004")
    MemberFactory(member_number="700000005")


def _submit_form(page: str, data: dict[str, Any]) -> Ticket:
    response = Client().post(page, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Ticket.objects.latest("id")


def _submit_api(api: Client, kind: str, data: dict[str, Any]) -> Ticket:
    response = api.post(f"/api/v1/requests/{kind}", data, content_type="application/json")
    assert response.status_code == 202, response.content
    return Ticket.objects.latest("id")


def _outcome(ticket: Ticket) -> dict[str, Any]:
    """Everything a submission leaves behind, minus what differs by nature (ids, dates)."""
    return {
        "kind": ticket.kind,
        "state": ticket.state,
        "match_result": ticket.match_result,
        "member": ticket.member_id is not None,
        "submitted": (
            ticket.submitted_member_number,
            ticket.submitted_last_name,
            ticket.submitted_first_name,
            ticket.submitted_birth_date,
            ticket.submitted_email,
            ticket.requested_email,
            ticket.message,
            ticket.secret_question,
        ),
        "secret_answer": (ticket.secret_answer_verified, ticket.secret_answer_failures),
        "history": [(e.kind, e.from_state, e.to_state, e.reason) for e in ticket.events.all()],
        "emails": sorted(
            (m.template, m.recipient) for m in OutboxMessage.objects.filter(ticket=ticket)
        ),
    }


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("member_number", "answer"),
    [("700000001", "Caramel"), ("700000003", "Caramel"), ("799999999", "wrong")],
)
def test_an_api_submission_leaves_what_the_form_leaves(
    kind: str, member_number: str, answer: str, registry: None, api: Client
) -> None:
    page, form_only, api_only, both = KINDS[kind]
    both = {**both, "secret_answer": answer} if "secret_answer" in both else both
    # The first registry member goes through the form, the second (identical) through the API.
    form_ticket = _submit_form(
        page, {**IDENTITY, **both, **form_only, "member_number": member_number}
    )
    form = _outcome(form_ticket)
    api_number = "700000002" if member_number == "700000001" else member_number
    if api_number == member_number:
        # The same person cannot have two open requests: close the first (attach is tested apart).
        Ticket.objects.filter(pk=form_ticket.pk).update(state=TicketState.REJECTED)
    api_ticket = _submit_api(
        api, kind, {**IDENTITY, **both, **api_only, "member_number": api_number}
    )
    through_api = _outcome(api_ticket)
    through_api["submitted"] = (member_number, *through_api["submitted"][1:])
    assert through_api == form


def test_validation_errors_are_the_forms_own_messages(api: Client) -> None:
    bad = {**IDENTITY, "birth_date": "31/02/1980", "email": "nope", "member_number": ""}
    page = Client().post("/support/", {**bad, "topic": "close_account", "message": "x"})
    form_errors = page.context["form"].errors
    response = api.post(
        "/api/v1/requests/closure", {**bad, "message": "x"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert errors["birth_date"] == form_errors["birth_date"]
    assert errors["email"] == form_errors["email"]
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    "body", [[], "text", {"last_name": ["a"]}, {"last_name": {"x": 1}}, {"language": "de"}]
)
def test_a_body_that_is_not_an_object_of_fields_is_a_problem_not_a_crash(
    api: Client, body: Any
) -> None:
    response = api.post("/api/v1/requests/registration", body, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_the_answer_is_the_same_whatever_the_registry_holds(registry: None, api: Client) -> None:
    answers = []
    for number in ("700000001", "700000003", "799999999"):
        response = api.post(
            "/api/v1/requests/recovery",
            {**IDENTITY, "member_number": number},
            content_type="application/json",
        )
        body = response.json()
        answers.append(
            (response.status_code, sorted(body), body["reference"][:4], sorted(response.headers))
        )
    assert answers[0] == answers[1] == answers[2]


def test_equal_work_whatever_the_registry_holds(registry: None, api: Client) -> None:
    counts = []
    for number in ("700000004", "700000005", "799999999"):
        with CaptureQueriesContext(connection) as queries:
            api.post(
                "/api/v1/requests/closure",
                {**IDENTITY, "member_number": number, "message": "close"},
                content_type="application/json",
            )
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2]


@override_settings(GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR=2)
def test_the_per_identifier_limit_is_shared_with_the_forms(api: Client) -> None:
    cache.clear()
    data = {**IDENTITY, "member_number": "799999999"}
    Client().post("/support/", {**data, "topic": "close_account", "message": "x"})
    ok = api.post(
        "/api/v1/requests/closure", {**data, "message": "x"}, content_type="application/json"
    )
    refused = api.post(
        "/api/v1/requests/closure", {**data, "message": "x"}, content_type="application/json"
    )
    assert ok.status_code == 202
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3600"
    assert refused["Content-Type"] == "application/problem+json"
    assert Ticket.objects.count() == 2  # the form's and the first API call; not the third


def test_an_idempotency_key_makes_a_repeat_the_same_request(api: Client) -> None:
    data = {**IDENTITY, "member_number": "799999999", "message": "x"}
    headers = {"Idempotency-Key": "order-12345678"}
    first = api.post(
        "/api/v1/requests/closure", data, content_type="application/json", headers=headers
    )
    again = api.post(
        "/api/v1/requests/closure", data, content_type="application/json", headers=headers
    )
    assert first.json()["reference"] == again.json()["reference"]
    assert OutboxMessage.objects.count() == 1


def test_the_access_problem_endpoint_takes_only_its_two_topics(api: Client) -> None:
    response = api.post(
        "/api/v1/requests/access-problem",
        {**IDENTITY, "member_number": "799999999", "message": "x", "topic": "close_account"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "topic" in response.json()["errors"]


def test_the_public_status_is_neutral_and_follows_aliases(registry: None, api: Client) -> None:
    data = {**IDENTITY, "member_number": "700000003", "message": "x"}
    first = api.post("/api/v1/requests/closure", data, content_type="application/json").json()
    second = api.post("/api/v1/requests/closure", data, content_type="application/json").json()
    assert first["reference"] != second["reference"]  # a repeat gets its own alias reference
    for answer in (first, second):
        status = api.get(answer["status_url"])
        assert status.status_code == 200
        body = status.json()
        assert body["status"] == "in_review"  # an identity mismatch is never told
        assert body["reference"] == answer["reference"]
        assert set(body) == {"reference", "kind", "status", "received_at", "decided_at"}
        datetime.datetime.fromisoformat(body["received_at"])


@pytest.mark.parametrize("reference", ["CLO-00000000", "nonsense", "REG-ILOU0000"])
def test_an_unknown_reference_is_a_404_problem(api: Client, reference: str) -> None:
    response = api.get(f"/api/v1/requests/{reference}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=1)
def test_an_api_submissions_history_rows_carry_the_request_id_of_the_response(
    registry: None, api: Client
) -> None:
    _page, _form_only, api_only, both = KINDS["registration"]
    response = api.post(
        "/api/v1/requests/registration",
        {**IDENTITY, **both, **api_only, "member_number": "700000003"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="lb-api-5e6f7a8b",
    )
    assert response.status_code == 202
    assert response["X-Request-ID"] == "lb-api-5e6f7a8b"
    ticket = Ticket.objects.get(reference=response.json()["reference"])
    assert set(ticket.events.values_list("request_id", flat=True)) == {"lb-api-5e6f7a8b"}
