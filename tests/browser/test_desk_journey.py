"""An agent finds an identity mismatch, compares, rejects; another confirms, a supervisor approves
(four-eyes); the e-mails arrive.

Debian's chromium through Playwright against pytest-django's live server. The real-services
harness (SMTP sink, Celery worker) lives under tests/integration and its fixtures do not reach
this directory; tests/browser/conftest.py runs tasks in-process and keeps e-mails in Django's
outbox, which is where this journey reads them. Marked `integration` like the other journeys:
it skips without PostgreSQL and Redis (fails under CI=true).
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail

from members.models import Account
from members.second_factor import VERIFIED_AT_SESSION_KEY, current_code, secret_from_b32
from tests.factories import MemberFactory, StaffFactory
from tests.integration.harness import require_services
from tests.requests import intake_request
from tests.second_factor import fresh_code
from tickets.models import Ticket, TicketKind, TicketState
from workflows.services.intake import RequestData, request_intake

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _submit(member_number: str, last_name: str, email: str) -> Ticket:
    return request_intake(
        data=RequestData(
            kind=TicketKind.REGISTRATION,
            member_number=member_number,
            last_name=last_name,
            first_name="Zoë",
            birth_date=datetime.date(1980, 4, 12),
            email=email,
            secret_question="first_pet",
            secret_answer="Médor",
            language="en",
        )
    ).ticket


def _log_in(page: Any, username: str) -> None:
    """Password, then the second factor: a first login enrols (the key read off the page, the
    code computed from it as an authenticator app would), and keeps the backup codes shown."""
    page.goto("/desk/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "staff password 123")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/desk/second-factor/"))
    secret = page.locator("code.secret")
    if secret.count():
        assert page.locator("figure.qr svg").count() == 1  # the QR code, drawn by the page
        page.fill("#id_otp_token", current_code(secret_from_b32(secret.inner_text())))
        page.keyboard.press("Enter")
        page.wait_for_selector("ul.backup-codes")
        assert page.locator("ul.backup-codes li").count() == 10
        page.locator("a.button").click()
    else:
        page.fill("#id_otp_token", fresh_code(Account.objects.get(username=username)))
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/desk/$"))


def test_reject_one_mismatch_confirm_another_and_the_member_is_told(
    new_page: Callable[..., Any],
) -> None:
    require_services()
    StaffFactory(username="alice")
    StaffFactory(username="bob")
    StaffFactory(username="sam", groups=["supervisors", "agents"])
    fraud = _submit(MemberFactory(last_name="Lefèvre").member_number, "Lefevbre", "x@example.org")
    typo = _submit(MemberFactory(last_name="Martin").member_number, "Martinn", "zoe@example.org")
    assert {fraud.state, typo.state} == {TicketState.IDENTITY_MISMATCH}
    mail.outbox.clear()

    alice = new_page("en")
    _log_in(alice, "alice")
    alice.get_by_role("link", name="Identity mismatches").click()
    alice.get_by_role("link", name=fraud.reference).click()
    marks = alice.locator("table.comparison mark").all_inner_texts()
    assert "b" in marks and "è" in marks  # what differs, on both sides
    alice.get_by_role("button", name="Claim").click()
    alice.select_option("#reject-reason", "identity_not_confirmed")
    alice.fill("#reject-comment", "Name and e-mail do not fit the registry")
    alice.get_by_role("button", name="Reject").click()
    assert alice.get_by_text("Rejected: the member will be told.").is_visible()

    bob = new_page("en")
    _log_in(bob, "bob")
    bob.goto("/desk/?queue=mismatch")
    assert bob.get_by_role("link", name=fraud.reference).count() == 0
    bob.fill("#id_q", "martin")
    bob.keyboard.press("Enter")
    bob.get_by_role("link", name=typo.reference).click()
    # Confirming a mismatch is risky (four-eyes): recorded, nothing sent until a second person.
    bob.get_by_role("button", name="Confirm identity and ask for approval").click()
    assert bob.get_by_text("needs a second staff member's approval", exact=False).first.is_visible()
    typo.refresh_from_db()
    assert typo.state == TicketState.AWAITING_APPROVAL
    assert {message.to[0] for message in mail.outbox} == {"x@example.org"}

    sam = new_page("en")
    _log_in(sam, "sam")
    sam.goto("/desk/?queue=my_approval")
    sam.get_by_role("link", name=typo.reference).click()
    assert sam.get_by_text("Confirmation asked for by bob", exact=False).is_visible()
    sam.get_by_role("button", name="Approve and carry out").click()
    assert sam.get_by_text("Approved: the outcome is on its way").is_visible()

    fraud.refresh_from_db()
    typo.refresh_from_db()
    assert fraud.state == TicketState.REJECTED and fraud.decided_by.username == "alice"
    assert typo.state == TicketState.CONFIRMED and typo.decided_by.username == "sam"
    assert typo.approval_requested_by.username == "bob"
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert set(by_recipient) == {"x@example.org", "zoe@example.org"}
    credentials = by_recipient["zoe@example.org"].body
    assert typo.reference in credentials + by_recipient["zoe@example.org"].subject
    assert typo.member.member_number in credentials.splitlines()
    assert (
        fraud.reference
        in by_recipient["x@example.org"].subject + by_recipient["x@example.org"].body
    )


def test_an_old_second_factor_asks_again_and_the_confirmation_keeps_its_comment(
    new_page: Callable[..., Any], settings: Any
) -> None:
    """Step-up (docs/security.md §41) in a real browser: the comment typed survives the prompt."""
    settings.LANGUAGE_CODE = "en"
    carla = StaffFactory(username="carla")
    ticket = intake_request(MemberFactory(member_number="400000088"))
    page = new_page("en", carla)
    # The second factor was proven longer ago than GUICHET_STEP_UP_SECONDS.
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    session[VERIFIED_AT_SESSION_KEY] = time.time() - settings.GUICHET_STEP_UP_SECONDS - 5
    session.save()

    page.goto(f"/desk/tickets/{ticket.reference}/")
    page.fill("#confirm-comment", "called back on the number on file")
    page.get_by_role("button", name="Confirm identity and carry out").click()
    page.get_by_role("heading", name="Confirm it is you").wait_for()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.PENDING
    page.fill("#id_otp_token", fresh_code(carla))
    page.get_by_role("button", name="Confirm and continue").click()
    assert page.get_by_text("Confirmed: the outcome is on its way").is_visible()
    ticket.refresh_from_db()
    assert ticket.state == TicketState.CONFIRMED
    assert ticket.events.filter(body="called back on the number on file").exists()
