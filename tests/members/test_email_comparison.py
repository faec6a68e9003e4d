"""Both e-mail-change paths tell "another address" by one rule: casefold, as mail servers do.

The self-service form (portal) and the support ticket's decision (workflows) both call
members.services.accounts.emails_differ; "STRAßE@…" is "strasse@…" on both, where `.lower()`
would call them different.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from members.models import Account, EmailChangeOutcome, EmailChangeRequest
from members.services.accounts import emails_differ
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import Ticket, TicketKind
from workflows.services.accounts import email_changes_apply_due
from workflows.services.decisions import ticket_approve, ticket_confirm
from workflows.services.intake import RequestData, request_intake

pytestmark = pytest.mark.django_db
PASSWORD = "a long member passphrase"
ON_FILE = "strasse@example.org"
# Only case tells these apart from the address on file; casefold sees one address, lower() two.
SAME_ADDRESS = ["STRAßE@EXAMPLE.ORG", "Strasse@Example.org", " strasse@example.org "]


@pytest.fixture
def account(db: None) -> Account:
    return MemberAccountFactory(
        member=MemberFactory(member_number="760000002", email=ON_FILE), email=ON_FILE
    )


@pytest.mark.parametrize("typed", SAME_ADDRESS)
def test_the_rule_is_casefold_not_lower(typed: str) -> None:
    assert "straße".lower() != "strasse"  # why lower() is not enough
    assert not emails_differ(typed, ON_FILE)
    assert emails_differ("strasse2@example.org", ON_FILE)


# The form's address validator takes no "ß" in a local part, so only case variants reach the rule.
@pytest.mark.parametrize("typed", SAME_ADDRESS[1:])
def test_self_service_refuses_the_same_address_in_other_case(
    account: Account, typed: str, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    assert (
        client.post("/login/", {"username": "760000002", "password": PASSWORD}).status_code == 302
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/account/email/", {"password": PASSWORD, "new_email": typed})
    assert response.status_code == 200
    assert response.context["form"].has_error("new_email", code="unchanged")
    assert not EmailChangeRequest.objects.exists() and not mail.outbox


def support_email_change(account: Account, new_email: str) -> Ticket:
    """The member's e-mail change ticket, through support, typed as registered."""
    return request_intake(
        data=RequestData(
            kind=TicketKind.EMAIL_CHANGE,
            member_number="760000002",
            last_name=account.member.last_name,
            first_name=account.member.first_name,
            birth_date=account.member.birth_date,
            email="typed@example.org",
            message="My address",
            requested_email=new_email,
        )
    ).ticket


@pytest.mark.parametrize("typed", SAME_ADDRESS)
def test_support_path_does_not_tell_the_old_address_of_a_case_only_change(
    account: Account,
    agent: Account,
    supervisor: Account,
    typed: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = support_email_change(account, typed.strip())
    mail.outbox.clear()
    ticket_confirm(reference=ticket.reference, actor=agent)  # an e-mail change: four-eyes
    with django_capture_on_commit_callbacks(execute=True):
        ticket_approve(reference=ticket.reference, actor=supervisor)
    # One notice, to the address now on file; no "your address changed" to the same mailbox twice.
    assert [m.to for m in mail.outbox] == [[typed.strip()]]


def test_a_case_only_change_through_support_replaces_a_change_still_waiting(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The member's latest request wins: an older change of address, still in its waiting time,
    must not apply after a support ticket set the address on file (in other case)."""
    now = timezone.now()
    waiting = EmailChangeRequest.objects.create(
        account=account,
        new_email="elsewhere@example.org",
        confirmed_at=now,
        applies_at=now + datetime.timedelta(hours=1),
    )
    ticket = support_email_change(account, "Strasse@Example.org")
    ticket_confirm(reference=ticket.reference, actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_approve(reference=ticket.reference, actor=supervisor)
    waiting.refresh_from_db()
    assert waiting.used_at is not None and waiting.outcome == EmailChangeOutcome.SUPERSEDED
    email_changes_apply_due(now=now + datetime.timedelta(days=30))
    account.refresh_from_db()
    assert account.email == "Strasse@Example.org"
