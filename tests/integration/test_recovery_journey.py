"""Forgotten codes on real services: codes go to the e-mail on file; the secret-answer path moves
them to a new address once the change of address has waited, and tells the old one at once."""

from __future__ import annotations

import datetime

from django.utils import timezone

from members.models import Account
from members.secret_answers import secret_answer_hash
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory
from tests.integration.harness import (
    CeleryWorker,
    SmtpSink,
    outbox_template_of,
    temporary_password_in,
    text_part,
    wait_outbox_idle,
)
from tests.integration.steps import REFERENCE_IN_PATH, desk_action, desk_login, member_login
from tickets.models import Ticket, TicketState
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.accounts import email_changes_apply_due

NEW_PASSWORD = "Copper meadow lanterns 58"
OLD_PASSWORD = "an old member passphrase"


def recovery_data(member_number: str, email: str, **extra: str) -> dict[str, str]:
    return {
        "member_number": member_number,
        "nir": "",
        "last_name": "Lefèvre",
        "first_name": "Hélène",
        "birth_date": "21/06/1962",
        "email": email,
        **extra,
    }


def _member(number: str, on_file: str) -> Account:
    account = MemberAccountFactory(
        member=MemberFactory(
            member_number=number,
            last_name="Lefèvre",
            first_name="Hélène",
            birth_date=datetime.date(1962, 6, 21),
            email=on_file,
        ),
        email=on_file,
        secret_answer_hash=secret_answer_hash("Rue des Lilas"),
    )
    account.set_password(OLD_PASSWORD)
    account.save()
    return account


def _submit(live_app, data: dict[str, str]) -> str:
    response = live_app.client().submit("/recover/", data)
    match = REFERENCE_IN_PATH.match(response.path)
    assert match, f"recovery refused at {response.path}"
    return match.group(1)


def test_forgotten_codes_reach_the_address_on_file_then_force_a_change(
    live_app, celery_worker: CeleryWorker, smtp_sink: SmtpSink
) -> None:
    _member("700300400", "helene.onfile@example.org")
    StaffFactory(username="agent-rec")
    reference = _submit(live_app, recovery_data("700300400", "typed.helene@example.net"))
    ack = smtp_sink.wait_for(
        lambda m: (
            "typed.helene@example.net" in m["To"] and outbox_template_of(m) == "acknowledgment"
        )
    )
    assert reference in ack["Subject"] and "700300400" not in text_part(ack)
    # Nothing changes before the decision: the current password still works.
    assert member_login(live_app.client(), "700300400", OLD_PASSWORD).path == "/account/"

    desk = live_app.client()
    desk_login(desk, "agent-rec", "staff password 123")
    desk_action(desk, reference, "confirm")
    assert Ticket.objects.get(reference=reference).state == TicketState.CONFIRMED
    codes = smtp_sink.wait_for(lambda m: outbox_template_of(m) == "credentials")
    assert codes["To"] == "helene.onfile@example.org"  # never the typed address
    assert not smtp_sink.messages_to("typed.helene@example.net")[1:]  # only the acknowledgment
    temporary = temporary_password_in(codes)

    assert member_login(live_app.client(), "700300400", OLD_PASSWORD).path == "/login/"
    browser = live_app.client()
    assert member_login(browser, "700300400", temporary).path == "/account/password/"
    changed = browser.submit(
        "/account/password/",
        {"old_password": temporary, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.path == "/account/"
    assert member_login(live_app.client(), "700300400", temporary).path == "/login/"
    assert member_login(live_app.client(), "700300400", NEW_PASSWORD).path == "/account/"
    wait_outbox_idle()


def test_a_right_secret_answer_sends_codes_to_the_new_address_and_tells_the_old(
    live_app, celery_worker: CeleryWorker, smtp_sink: SmtpSink
) -> None:
    account = _member("700300401", "dead.mailbox@example.org")
    StaffFactory(username="agent-rec2")
    reference = _submit(
        live_app,
        recovery_data(
            "700300401",
            "helene.new@example.net",
            email_lost="on",
            new_email="helene.new@example.net",
            secret_answer="rue des lilas",
        ),
    )
    smtp_sink.wait_for(lambda m: outbox_template_of(m) == "acknowledgment")
    assert Ticket.objects.get(reference=reference).secret_answer_verified
    account.refresh_from_db()
    assert account.email == "dead.mailbox@example.org"

    desk = live_app.client()
    desk_login(desk, "agent-rec2", "staff password 123")
    desk_action(desk, reference, "confirm")
    # Codes to an address not on file: four-eyes. Nothing is sent until a second person approves.
    assert Ticket.objects.get(reference=reference).state == TicketState.AWAITING_APPROVAL
    assert not OutboxMessage.objects.filter(
        ticket__reference=reference, template=EmailTemplate.CREDENTIALS
    ).exists()
    StaffFactory(username="sup-rec2", groups=["supervisors", "agents"])
    approver = live_app.client()
    desk_login(approver, "sup-rec2", "staff password 123")
    desk_action(approver, reference, "approve")
    assert Ticket.objects.get(reference=reference).state == TicketState.CONFIRMED
    # The change of address waits (GUICHET_EMAIL_CHANGE_DELAY_HOURS), the codes with it: the old
    # address is told at once with its veto link; nothing goes to the new one yet.
    waiting = smtp_sink.wait_for(lambda m: outbox_template_of(m) == "email_change_pending")
    assert waiting["To"] == "dead.mailbox@example.org" and reference in waiting["Subject"]
    wait_outbox_idle()
    assert not smtp_sink.messages_to("helene.new@example.net")[1:]  # only the acknowledgment
    account.refresh_from_db()
    assert account.email == "dead.mailbox@example.org"
    # The beat's apply step, past the delay: the address changes, then the codes go to it.
    assert email_changes_apply_due(now=timezone.now() + datetime.timedelta(hours=73)) == 1
    codes = smtp_sink.wait_for(lambda m: outbox_template_of(m) == "credentials")
    assert codes["To"] == "helene.new@example.net"
    told = smtp_sink.wait_for(lambda m: outbox_template_of(m) == "email_changed_old")
    assert told["To"] == "dead.mailbox@example.org"
    assert reference in told["Subject"]
    assert temporary_password_in(codes) not in text_part(told)
    account.refresh_from_db()
    assert account.email == "helene.new@example.net"
    assert member_login(live_app.client(), "700300401", temporary_password_in(codes)).path == (
        "/account/password/"
    )
    wait_outbox_idle()
