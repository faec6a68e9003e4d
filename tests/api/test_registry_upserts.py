"""Registry upserts through the API: import_members' rules and row errors, idempotent, bounded."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from members.models import Coverage, Member
from members.services.registry import CSV_HEADER
from tests.factories import MemberFactory
from tests.requests import intake_request
from tickets.models import TicketEvent, TicketState

pytestmark = pytest.mark.django_db

NIR = "180017512345660"
GOOD: list[dict[str, Any]] = [
    {
        "member_number": "100000001",
        "nir": NIR,
        "last_name": "Martin",
        "first_name": "Zoë",
        "birth_date": "1980-04-12",
        "email": "zoe@example.org",
        "coverages": ["health_principal"],
    },
    {
        "member_number": "100000002",
        "last_name": "Nguyễn",
        "first_name": "Thị Lan",
        "birth_date": "05/03/1948",
        "coverages": ["retiree", "provident_employee"],
    },
]
BAD: list[dict[str, Any]] = [
    {**GOOD[0], "member_number": "x"},
    {**GOOD[0], "member_number": "100000009", "nir": "180017512345661"},
    {**GOOD[0], "member_number": "100000010", "birth_date": "31/02/1980"},
    {**GOOD[0], "member_number": "100000011", "email": "not an address"},
    {**GOOD[0], "member_number": "100000012", "coverages": ["gold"]},
    {**GOOD[0], "member_number": "100000013", "last_name": "<script>"},
    # Well formed, 308 characters: more than the registry's column holds.
    {
        **GOOD[0],
        "member_number": "100000014",
        "email": "p" * 60 + "@" + ".".join(["d" * 60] * 4) + ".org",
    },
]


def _post(api: Client, members: Any) -> Any:
    return api.post(
        "/api/v1/registry/members", {"members": members}, content_type="application/json"
    )


def _snapshot() -> list[tuple[Any, ...]]:
    return sorted(
        (
            m.member_number,
            m.nir,
            m.last_name,
            m.first_name,
            m.birth_date,
            m.email,
            tuple(sorted(Coverage.objects.filter(member=m).values_list("kind", flat=True))),
        )
        for m in Member.objects.all()
    )


def test_a_batch_is_upserted_and_a_repeat_changes_nothing(api: Client) -> None:
    first = _post(api, GOOD)
    assert first.status_code == 200
    report = first.json()
    assert {k: report[k] for k in ("imported", "rejected", "rechecked")} == {
        "imported": 2,
        "rejected": [],
        "rechecked": 0,
    }
    before = _snapshot()
    again = _post(api, GOOD).json()
    assert {k: again[k] for k in ("imported", "rejected")} == {"imported": 2, "rejected": []}
    # Each batch has its own id, kept in the history of the requests it re-checks.
    assert again["import_id"] != report["import_id"]
    assert _snapshot() == before
    assert Member.objects.count() == 2


def test_an_update_replaces_the_fields_and_coverages(api: Client) -> None:
    _post(api, GOOD)
    _post(api, [{**GOOD[1], "email": "lan@example.org", "coverages": ["retiree"]}])
    member = Member.objects.get(member_number="100000002")
    assert member.email == "lan@example.org"
    assert list(member.coverages.values_list("kind", flat=True)) == ["retiree"]


def test_rows_are_rejected_for_the_same_reasons_as_import_members(
    api: Client, tmp_path: Path
) -> None:
    response = _post(api, [*BAD, GOOD[0]]).json()
    api_reasons = [r["reason"] for r in response["rejected"]]
    assert [r["index"] for r in response["rejected"]] == list(range(len(BAD)))
    assert response["imported"] == 1
    Member.objects.all().delete()
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_HEADER)
    for row in BAD:
        values = {**row, "coverages": ";".join(row.get("coverages", []))}
        writer.writerow([values.get(name, "") for name in CSV_HEADER])
    path = tmp_path / "bad.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    errors = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_members", str(path), stdout=io.StringIO(), stderr=errors)
    command_reasons = [line.split(": ", 1)[1] for line in errors.getvalue().splitlines()]
    assert api_reasons == command_reasons


@pytest.mark.parametrize(
    "item", ["text", 12, {"member_number": 100000001}, {**GOOD[0], "coverages": [1]}]
)
def test_an_item_of_the_wrong_shape_is_a_row_error(api: Client, item: Any) -> None:
    response = _post(api, [item, GOOD[1]])
    assert response.status_code == 200
    assert [r["index"] for r in response.json()["rejected"]] == [0]


@override_settings(GUICHET_API_REGISTRY_BATCH_MAX=2)
@pytest.mark.parametrize("members", [[], "x", [GOOD[0]] * 3])
def test_an_empty_or_oversized_batch_is_refused_whole(api: Client, members: Any) -> None:
    response = _post(api, members)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert not Member.objects.exists()


def test_registry_writes_need_their_scope(client: Client) -> None:
    from api.clients import client_create
    from tests.api.conftest import token_for

    other = client_create(name="crm-read", scopes=["requests:write"])
    response = client.post(
        "/api/v1/registry/members",
        {"members": GOOD},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(client, other)}"},
    )
    assert response.status_code == 403
    assert not Member.objects.exists()


def test_a_batch_re_checks_open_requests_like_import_members(api: Client) -> None:
    """The API path does what import_members does: same re-check, the batch's id in history."""
    member = MemberFactory(first_name="Zoë")
    pending = intake_request(member)
    item = {
        "member_number": member.member_number,
        "last_name": member.last_name,
        "first_name": "Chloé",
        "birth_date": member.birth_date.isoformat(),
        "email": member.email,
        "coverages": ["health_principal"],
    }
    report = _post(api, [item]).json()
    assert report["rechecked"] == 1
    pending.refresh_from_db()
    assert pending.state == TicketState.IDENTITY_MISMATCH
    assert pending.recheck_import_id == report["import_id"]
    last = TicketEvent.objects.filter(ticket=pending).order_by("created_at", "id").last()
    assert last is not None and last.actor is None
    assert last.data["import_id"] == report["import_id"]
    assert last.data["source"].startswith("api:gc_")
    # The same batch again changes no member, so no request is touched.
    events = TicketEvent.objects.filter(ticket=pending).count()
    assert _post(api, [item]).json()["rechecked"] == 0
    assert TicketEvent.objects.filter(ticket=pending).count() == events
