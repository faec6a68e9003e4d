"""Takeover signals at intake (workflows/risk.py): each signal fires on its pattern, not without."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import Account, Member
from members.secret_answers import secret_answer_hash
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import EventKind, RiskLevel, Ticket, TicketEvent, TicketKind
from workflows import risk
from workflows.models import IntakeTrace
from workflows.services.intake import RequestData, intake_traces_purge, request_intake

pytestmark = pytest.mark.django_db


def submit(member: Member, **overrides: Any) -> Ticket:
    """A request typed exactly as the registry holds `member` (a registration by default)."""
    fields: dict[str, Any] = {
        "kind": TicketKind.REGISTRATION,
        "member_number": member.member_number,
        "last_name": member.last_name,
        "first_name": member.first_name,
        "birth_date": member.birth_date,
        "email": member.email,
        "secret_question": "first_pet",
        "secret_answer": "Caramel",
    }
    fields.update(overrides)
    ticket: Ticket = request_intake(data=RequestData(**fields)).ticket
    ticket.refresh_from_db()
    return ticket


def recovery(account: Account, **overrides: Any) -> Ticket:
    member = account.member
    assert member is not None
    return submit(member, **{"kind": TicketKind.RECOVERY, "email": account.email, **overrides})


def codes(ticket: Ticket) -> list[str]:
    return [signal["code"] for signal in ticket.risk_signals]


@pytest.fixture
def account() -> Account:
    account: Account = MemberAccountFactory(secret_answer_hash=secret_answer_hash("Caramel"))
    return account


def test_a_single_honest_request_carries_no_signal(account: Account) -> None:
    ticket = recovery(account, client_ip="198.51.100.7")
    assert (ticket.risk_level, ticket.risk_score, ticket.risk_signals) == (RiskLevel.NONE, 0, [])


def test_typed_email_on_file_for_another_members_account_is_a_high_signal(
    account: Account,
) -> None:
    other = MemberFactory()
    ticket = submit(other, email=account.email.upper())
    assert codes(ticket) == ["email_on_file_for_other"]
    assert ticket.risk_level == RiskLevel.HIGH


def test_typed_email_in_the_registry_for_another_member_is_a_signal() -> None:
    owner = MemberFactory(email="owner@example.org")
    ticket = submit(MemberFactory(), email="Owner@Example.org")
    assert "email_on_file_for_other" in codes(ticket)
    assert owner.pk != ticket.member_id


def test_a_members_own_address_is_not_on_file_for_another() -> None:
    member = MemberFactory()
    assert "email_on_file_for_other" not in codes(submit(member, email=member.email))


def test_typed_email_used_in_requests_for_other_identities() -> None:
    shared = "someone@example.net"
    first = submit(MemberFactory(), email=shared)
    second = submit(MemberFactory(), email=shared)
    assert "email_used_for_others" not in codes(first)
    assert ticket_signal(second, "email_used_for_others")["count"] == 1


def test_the_same_person_repeating_with_one_address_is_not_other_identities() -> None:
    member = MemberFactory()
    submit(member, email="me@example.net")
    again = submit(member, kind=TicketKind.ACCESS, email="me@example.net")
    assert "email_used_for_others" not in codes(again)


def test_several_requests_for_one_member_within_30_days(account: Account) -> None:
    member = account.member
    assert member is not None
    recovery(account)
    second = submit(member, kind=TicketKind.ACCESS, email=account.email)
    third = submit(member, kind=TicketKind.CLOSURE, email=account.email)
    assert "repeat_requests" not in codes(second)
    assert ticket_signal(third, "repeat_requests")["count"] == 3


def test_requests_older_than_30_days_do_not_count_as_repeats(account: Account) -> None:
    member = account.member
    assert member is not None
    recovery(account)
    submit(member, kind=TicketKind.ACCESS, email=account.email)
    IntakeTrace.objects.update(created_at=timezone.now() - datetime.timedelta(days=31))
    third = submit(member, kind=TicketKind.CLOSURE, email=account.email)
    assert "repeat_requests" not in codes(third)


@pytest.mark.parametrize("field", ["email_changed_at", "password_changed_at"])
def test_recovery_within_14_days_of_an_email_or_password_change(
    account: Account, field: str
) -> None:
    setattr(account, field, timezone.now() - datetime.timedelta(days=3))
    account.save(update_fields=[field])
    ticket = recovery(account)
    assert ticket_signal(ticket, "recent_credential_change")["days"] == 3


def test_a_change_older_than_14_days_is_no_signal(account: Account) -> None:
    account.email_changed_at = timezone.now() - datetime.timedelta(days=15)
    account.save(update_fields=["email_changed_at"])
    assert "recent_credential_change" not in codes(recovery(account))


def test_email_set_stamps_the_change_the_signal_reads(account: Account) -> None:
    from members.services.accounts import account_email_set

    account_email_set(account=account, new_email="new@example.org")
    account.refresh_from_db()
    assert account.email_changed_at is not None
    assert "recent_credential_change" in codes(recovery(account))


def test_one_network_submitting_for_several_identities_within_24_hours() -> None:
    first = submit(MemberFactory(), client_ip="203.0.113.5")
    second = submit(MemberFactory(), client_ip="203.0.113.77")
    third = submit(MemberFactory(), client_ip="203.0.113.200")
    assert "network_several_identities" not in codes(first) + codes(second)
    assert ticket_signal(third, "network_several_identities")["count"] == 2


def test_other_networks_and_older_requests_do_not_count() -> None:
    submit(MemberFactory(), client_ip="203.0.113.5")
    submit(MemberFactory(), client_ip="203.0.114.5")
    IntakeTrace.objects.update(created_at=timezone.now() - datetime.timedelta(hours=25))
    submit(MemberFactory(), client_ip="203.0.113.6")
    assert "network_several_identities" not in codes(
        submit(MemberFactory(), client_ip="203.0.113.7")
    )


def test_ipv6_requests_are_grouped_by_their_64() -> None:
    submit(MemberFactory(), client_ip="2001:db8:1:2::10")
    submit(MemberFactory(), client_ip="2001:db8:1:2:ffff::1")
    third = submit(MemberFactory(), client_ip="2001:db8:1:2:aaaa::2")
    assert "network_several_identities" in codes(third)
    assert risk.network_of("2001:db8:1:2:aaaa::2") == "2001:db8:1:2::/64"


def test_a_wrong_secret_answer_is_a_signal(account: Account) -> None:
    ticket = recovery(account, secret_answer="Wrong", requested_email="new@example.org")
    assert ticket.secret_answer_failures == 1
    assert ticket_signal(ticket, "secret_answer_failures")["count"] == 1


def test_a_right_secret_answer_is_none(account: Account) -> None:
    ticket = recovery(account, secret_answer="Caramel", requested_email="new@example.org")
    assert "secret_answer_failures" not in codes(ticket)


def test_typed_email_different_from_the_one_on_file(account: Account) -> None:
    ticket = recovery(account, email="elsewhere@example.net")
    assert "email_differs_from_file" in codes(ticket)


def test_the_address_on_file_typed_in_capitals_is_the_same(account: Account) -> None:
    assert "email_differs_from_file" not in codes(recovery(account, email=account.email.upper()))


@pytest.mark.parametrize(
    "address", ["x@mailinator.com", "x@YOPMAIL.com", "x@inbox.guerrillamail.com"]
)
def test_a_disposable_address_domain_is_a_signal(address: str) -> None:
    ticket = submit(MemberFactory(), email=address)
    assert ticket_signal(ticket, "disposable_domain")["domain"] == address.split("@")[1].lower()


def test_an_ordinary_domain_is_not_disposable() -> None:
    assert not risk.is_disposable("someone@example.org")
    assert not risk.is_disposable("someone@gmail.com")


def test_the_vendored_list_names_its_source_and_date() -> None:
    header = risk.DISPOSABLE_LIST.read_text(encoding="utf-8").splitlines()[:6]
    assert any("Source:" in line for line in header)
    assert any("Vendored on 2026-12-03" in line for line in header)
    assert len(risk.disposable_domains()) > 1000


def test_levels_follow_the_thresholds() -> None:
    assert risk.level_of(risk.SOME_THRESHOLD - 1) == RiskLevel.NONE
    assert risk.level_of(risk.SOME_THRESHOLD) == RiskLevel.SOME
    assert risk.level_of(risk.HIGH_THRESHOLD) == RiskLevel.HIGH


def test_a_takeover_pattern_adds_up_to_high_risk(account: Account) -> None:
    account.email_changed_at = timezone.now() - datetime.timedelta(days=1)
    account.save(update_fields=["email_changed_at"])
    ticket = recovery(account, email="attacker@mailinator.com")
    assert ticket.risk_level == RiskLevel.HIGH
    assert set(codes(ticket)) == {
        "recent_credential_change",
        "email_differs_from_file",
        "disposable_domain",
    }
    assert ticket.risk_score == sum(risk.WEIGHTS[code] for code in codes(ticket))


def test_the_history_keeps_the_signals_seen_at_intake() -> None:
    ticket = submit(MemberFactory(), email="x@mailinator.com")
    created = TicketEvent.objects.get(ticket=ticket, kind=EventKind.CREATED)
    assert created.data["risk"] == {
        "level": RiskLevel.SOME,
        "score": risk.WEIGHTS["disposable_domain"],
        "signals": ["disposable_domain"],
    }


def test_a_related_request_refreshes_the_members_other_open_tickets(account: Account) -> None:
    member = account.member
    assert member is not None
    first = recovery(account)
    submit(member, kind=TicketKind.ACCESS, email=account.email)
    assert first.risk_level == RiskLevel.NONE
    submit(member, kind=TicketKind.CLOSURE, email=account.email)
    first.refresh_from_db()
    assert "repeat_requests" in codes(first)
    refreshed = TicketEvent.objects.get(ticket=first, kind=EventKind.RISK)
    assert refreshed.data["previous_level"] == RiskLevel.NONE
    assert refreshed.data["level"] == first.risk_level


def test_a_repeat_attached_to_the_open_ticket_raises_its_signals(account: Account) -> None:
    first = recovery(account)
    attached = recovery(account, email="x@mailinator.com")
    assert attached.pk == first.pk
    assert "disposable_domain" in codes(attached)


def test_traces_keep_no_address_and_no_ip_in_plain_text() -> None:
    submit(MemberFactory(), email="plain@example.org", client_ip="203.0.113.5")
    trace = IntakeTrace.objects.get()
    stored = f"{trace.email_key}{trace.network_key}{trace.identity_key}"
    assert "plain" not in stored
    assert "203.0.113" not in stored
    assert trace.email_key == risk.email_key("PLAIN@example.org")


def test_the_signals_cost_three_indexed_queries_at_intake(account: Account) -> None:
    with CaptureQueriesContext(connection) as captured:
        recovery(account, client_ip="203.0.113.9", email="x@example.net")
    signal_queries = [
        query["sql"]
        for query in captured.captured_queries
        if "workflows_intaketrace" in query["sql"] or "LOWER(" in query["sql"].upper()
    ]
    assert len(signal_queries) == 3, signal_queries


def ticket_signal(ticket: Ticket, code: str) -> dict[str, Any]:
    found = [signal for signal in ticket.risk_signals if signal["code"] == code]
    assert found, f"{code} not in {codes(ticket)}"
    return found[0]


def test_traces_past_the_longest_window_are_purged() -> None:
    submit(MemberFactory())
    submit(MemberFactory())
    old = IntakeTrace.objects.order_by("id").first()
    assert old is not None
    IntakeTrace.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=risk.TRACE_DAYS + 1)
    )
    assert intake_traces_purge() == 1
    assert IntakeTrace.objects.count() == 1
