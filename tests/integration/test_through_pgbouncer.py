"""The registration journey with every process behind PgBouncer in transaction mode: the web
requests (the live server's threads), a real worker and this test process all reach PostgreSQL
through a private PgBouncer; then `verify_history` reads the resulting chains through it too.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management import call_command

from members.models import Account
from tests.factories import MemberFactory, StaffFactory
from tests.integration.harness import (
    CeleryWorker,
    PgBouncer,
    SmtpSink,
    outbox_template_of,
    temporary_password_in,
    wait_outbox_idle,
)
from tests.integration.steps import (
    desk_action,
    desk_login,
    member_login,
    register,
    registration_data,
)
from tickets.models import EventKind, Ticket, TicketState
from workflows.models import OutboxMessage, OutboxStatus


def test_a_registration_journey_through_pgbouncer_sends_each_email_once(
    pgbouncer: PgBouncer,
    live_app: Any,
    celery_worker_factory: Callable[..., CeleryWorker],
    smtp_sink: SmtpSink,
    capsys: Any,
) -> None:
    assert settings.DATABASES["default"]["PORT"] == pgbouncer.port
    worker = celery_worker_factory("behind-pgbouncer", bouncer=pgbouncer)
    member = MemberFactory(
        member_number="700100300",
        last_name="Lambert",
        first_name="Inès",
        birth_date=datetime.date(1981, 6, 2),
        email="registry.ines@example.org",
    )
    typed_email = "ines.lambert@example.net"
    StaffFactory(username="agent-pgb")

    reference = register(live_app.client(), registration_data(member, email=typed_email))
    smtp_sink.wait_for(
        lambda m: typed_email in m["To"] and outbox_template_of(m) == "acknowledgment"
    )
    desk = live_app.client()
    desk_login(desk, "agent-pgb", "staff password 123")
    desk_action(desk, reference, "confirm")
    assert Ticket.objects.get(reference=reference).state == TicketState.CONFIRMED
    codes = smtp_sink.wait_for(
        lambda m: typed_email in m["To"] and outbox_template_of(m) == "credentials"
    )
    worker.wait_for_log(r"outbox message \d+ \(credentials\) sent")
    landed = member_login(live_app.client(), member.member_number, temporary_password_in(codes))
    assert landed.path == "/account/password/"
    wait_outbox_idle()

    # Each e-mail once, each marked sent once (fencing tokens of their one claim).
    ticket = Ticket.objects.get(reference=reference)
    messages = OutboxMessage.objects.filter(ticket=ticket)
    assert {m.status for m in messages} == {OutboxStatus.SENT}
    assert all(m.lease_token == 1 for m in messages)
    assert len(smtp_sink.messages_to(typed_email)) == messages.count() == 2
    assert ticket.events.filter(kind=EventKind.EMAIL, reason="sent").count() == 2
    assert Account.objects.get(username=member.member_number).must_change_password

    call_command("verify_history")
    assert "History intact" in capsys.readouterr().out
    # The worker really went through PgBouncer (its log names the test database's logins).
    assert f"db={settings.DATABASES['default']['NAME']}" in pgbouncer.log_text()
