"""Requests as the member fills them in: one builder per shape, shared by every test module.

`intake_request` goes through the same `request_intake` the forms call; the `*_form` builders give
the POST data of the public pages. Each takes overrides, and `None` drops a field.
"""

from __future__ import annotations

from typing import Any

from members.models import Member
from tickets.models import Ticket, TicketKind
from workflows.services.intake import RequestData, request_intake

SECRET_QUESTION = "first_pet"
SECRET_ANSWER = "Caramel"


def _with(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def intake_request(member: Member, **overrides: Any) -> Ticket:
    """A registration for `member` made through intake, typed exactly as the registry holds it."""
    fields = {
        "kind": TicketKind.REGISTRATION,
        "member_number": member.member_number,
        "last_name": member.last_name,
        "first_name": member.first_name,
        "birth_date": member.birth_date,
        "email": "typed@example.org",
        "secret_question": SECRET_QUESTION,
        "secret_answer": SECRET_ANSWER,
    }
    return request_intake(data=RequestData(**_with(fields, overrides))).ticket


def identity_form(**overrides: Any) -> dict[str, Any]:
    """The identity block shared by /recover/ and /support/: Zoë Martin, 12/04/1980."""
    data = {
        "member_number": "",
        "nir": "",
        "last_name": "Martin",
        "first_name": "Zoë",
        "birth_date": "12/04/1980",
        "email": "typed@example.org",
    }
    return _with(data, overrides)


def registration_form(**overrides: Any) -> dict[str, Any]:
    """The /register/ POST for member 100200300, Zoë Martin, 12/04/1980, terms accepted."""
    data = identity_form(member_number="100200300", email="zoe@example.org")
    data.update(
        secret_question=SECRET_QUESTION,
        secret_answer=SECRET_ANSWER,
        accept_terms="on",
    )
    return _with(data, overrides)
