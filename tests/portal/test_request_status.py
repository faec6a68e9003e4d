"""The public status page of one request: kind, neutral state and dates, nothing personal."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client

from members.models import CoverageKind
from tests.factories import MemberFactory, TicketFactory
from tickets.models import RejectionReason, Ticket, TicketState

pytestmark = pytest.mark.django_db

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
RECEIVED = datetime.datetime(2025, 3, 4, 10, 15, tzinfo=datetime.UTC)
NIR = "255069912312330"


def _ticket(state: str = TicketState.PENDING, number: str = "700000001", **kw: object) -> Ticket:
    member = MemberFactory(
        member_number=number,
        nir=NIR,
        last_name="Quasimodo",
        first_name="Esmeralda",
        email=f"registry-{number}@example.net",
        coverages=[CoverageKind.RETIREE],
    )
    ticket = TicketFactory(
        member=member,
        state=state,
        submitted_nir=NIR,
        submitted_email=f"typed-{number}@example.org",
        **kw,
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=RECEIVED)
    return Ticket.objects.get(pk=ticket.pk)


def _masked(html: str, *values: str) -> str:
    for value in values:
        html = html.replace(value, "…")
    return CSRF.sub("csrf", html)


def test_it_shows_kind_state_and_date_only(client: Client) -> None:
    ticket = _ticket()
    response = client.get(f"/requests/{ticket.reference}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert ticket.reference in html
    assert "Registration" in html
    assert "2025" in html  # the date of receipt
    for secret in (
        "Quasimodo",
        "Esmeralda",
        ticket.member.member_number,
        NIR,
        "typed-700000001@example.org",
        "registry-700000001@example.net",
        "identity_mismatch",
    ):
        assert secret not in html, secret
    assert "no-store" in response["Cache-Control"]


def test_pending_and_identity_mismatch_read_the_same(client: Client) -> None:
    pending = _ticket(TicketState.PENDING, "700000001")
    mismatch = _ticket(TicketState.IDENTITY_MISMATCH, "700000002")
    pages = [
        _masked(client.get(f"/requests/{t.reference}/").content.decode(), t.reference)
        for t in (pending, mismatch)
    ]
    assert pages[0] == pages[1]


def test_a_rejection_shows_no_reason(client: Client) -> None:
    ticket = _ticket(
        TicketState.REJECTED,
        rejection_reason=RejectionReason.NOT_ELIGIBLE,
        decided_at=RECEIVED + datetime.timedelta(hours=2),
    )
    html = client.get(f"/requests/{ticket.reference}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for code in ("not_eligible", "Not eligible", "eligible"):
        assert code not in html


def test_decided_requests_show_their_decision_date(client: Client) -> None:
    pending = _ticket(TicketState.PENDING, "700000001")
    confirmed = _ticket(
        TicketState.CONFIRMED,
        "700000002",
        decided_at=datetime.datetime(2031, 5, 6, tzinfo=datetime.UTC),
    )
    assert "2031" in client.get(f"/requests/{confirmed.reference}/").content.decode()
    assert "2031" not in client.get(f"/requests/{pending.reference}/").content.decode()


@pytest.mark.parametrize(
    "reference",
    ["12345", "reg-abcdefgh", "REG-ABCDEFGHJ", "REG-ILOU0000", "REG-ABCD", "XXXXXXXXXXXX"],
)
def test_unknown_and_malformed_references_get_the_same_404(client: Client, reference: str) -> None:
    _ticket()
    unknown = "REG-ABCDEFGH"
    assert not Ticket.objects.filter(reference=unknown).exists()
    first = client.get(f"/requests/{unknown}/")
    second = client.get(f"/requests/{reference}/")
    assert first.status_code == second.status_code == 404
    assert _masked(first.content.decode(), unknown) == _masked(second.content.decode(), reference)


def test_only_get(client: Client) -> None:
    ticket = _ticket()
    assert client.post(f"/requests/{ticket.reference}/").status_code == 405
