"""Takeover signals where people meet them: the queue filter, the ticket page, the supervisors'
counts, and the rules a high-risk ticket carries (never confirmed in bulk, four-eyes hook)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from members.models import Account
from tests.factories import MemberAccountFactory, TicketFactory
from tickets.filters import TicketFilter
from tickets.models import HIGH_RISK_REASON, RiskLevel, Ticket, TicketKind, TicketState
from tickets.services import TicketActionError
from workflows import risk
from workflows.services.decisions import ticket_confirm

pytestmark = pytest.mark.django_db

HIGH_SIGNALS = [
    {"code": "email_on_file_for_other", "weight": 50},
    {"code": "disposable_domain", "weight": 30, "domain": "mailinator.com"},
]


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def _ticket(level: str, signals: list[dict[str, Any]] | None = None, **kwargs: Any) -> Ticket:
    ticket: Ticket = TicketFactory(**kwargs)
    Ticket.objects.filter(pk=ticket.pk).update(
        risk_level=level,
        risk_score=80 if level == RiskLevel.HIGH else 0,
        risk_signals=signals or [],
    )
    ticket.refresh_from_db()
    return ticket


def _refs(data: dict[str, str]) -> set[str]:
    request = RequestFactory().get("/desk/", data)
    filterset = TicketFilter(request.GET, queryset=Ticket.objects.all(), request=request)
    return set(filterset.qs.values_list("reference", flat=True))


def test_the_queue_filters_by_risk_level() -> None:
    none = _ticket(RiskLevel.NONE)
    some = _ticket(RiskLevel.SOME)
    high = _ticket(RiskLevel.HIGH)
    assert _refs({"risk": "high"}) == {high.reference}
    assert _refs({"risk": "some"}) == {some.reference}
    assert _refs({"risk": "none"}) == {none.reference}
    assert _refs({}) == {none.reference, some.reference, high.reference}


def test_the_desk_queue_offers_the_risk_filter_and_shows_the_level(agent_client: Client) -> None:
    high = _ticket(RiskLevel.HIGH, HIGH_SIGNALS)
    _ticket(RiskLevel.NONE)
    page = agent_client.get("/desk/", {"risk": "high"}).content.decode()
    assert 'name="risk"' in page
    assert high.reference in page and "High risk" in page


def test_the_ticket_page_explains_each_signal_in_plain_words(agent_client: Client) -> None:
    ticket = _ticket(RiskLevel.HIGH, HIGH_SIGNALS)
    page = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "The e-mail address typed is on file for another member." in page
    assert "disposable-address provider (mailinator.com)" in page
    assert "never confirmed in bulk" in page


def test_the_ticket_page_says_when_there_is_no_signal(agent_client: Client) -> None:
    ticket = _ticket(RiskLevel.NONE)
    page = agent_client.get(f"/desk/tickets/{ticket.reference}/").content.decode()
    assert "No takeover signal on this request." in page


def test_signal_sentences_are_translated() -> None:
    from django.utils import translation

    with translation.override("fr"):
        sentence = risk.signal_sentence({"code": "repeat_requests", "weight": 20, "count": 3})
    assert sentence != "3 requests for this member in the last 30 days."
    assert "3" in sentence


def test_every_signal_has_a_weight_and_a_sentence() -> None:
    assert set(risk.WEIGHTS) == set(risk.LABELS)


def test_the_supervisors_page_counts_open_tickets_by_risk(supervisor_client: Client) -> None:
    _ticket(RiskLevel.SOME)
    _ticket(RiskLevel.HIGH)
    _ticket(RiskLevel.HIGH)
    decided = _ticket(RiskLevel.HIGH)
    Ticket.objects.filter(pk=decided.pk).update(state=TicketState.REJECTED)
    response = supervisor_client.get("/desk/supervisor/")
    backlog = response.context["backlog"]
    assert {row["key"]: row["count"] for row in backlog.risks} == {"some": 1, "high": 2}
    assert 'id="backlog-risk"' in response.content.decode()


@pytest.fixture
def recovery_ticket() -> Ticket:
    account = MemberAccountFactory()
    return _ticket(RiskLevel.HIGH, HIGH_SIGNALS, kind=TicketKind.RECOVERY, member=account.member)


def test_a_high_risk_ticket_is_never_confirmed_in_bulk(
    recovery_ticket: Ticket, supervisor: Account
) -> None:
    with pytest.raises(TicketActionError) as refused:
        ticket_confirm(reference=recovery_ticket.reference, actor=supervisor, in_bulk=True)
    assert refused.value.code == HIGH_RISK_REASON
    recovery_ticket.refresh_from_db()
    assert recovery_ticket.state == TicketState.PENDING


def test_a_ticket_with_some_signals_may_be_confirmed_in_bulk(supervisor: Account) -> None:
    account = MemberAccountFactory()
    ticket = _ticket(RiskLevel.SOME, kind=TicketKind.RECOVERY, member=account.member)
    ticket_confirm(reference=ticket.reference, actor=supervisor, in_bulk=True)
    ticket.refresh_from_db()
    assert ticket.state == TicketState.CONFIRMED


def test_high_risk_is_a_reason_for_a_second_agent() -> None:
    assert _ticket(RiskLevel.HIGH).second_agent_reasons() == [HIGH_RISK_REASON]
    assert _ticket(RiskLevel.SOME).second_agent_reasons() == []
