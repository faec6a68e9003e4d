"""Issue 14 on real services: a registration submitted through the API follows the form's journey
to the credentials e-mail — the same acknowledgment, the agent's confirmation at the desk, the
real worker sending the codes over SMTP, the member logging in with them — and leaves the same
history as a form registration made beside it."""

from __future__ import annotations

import datetime
import json
from typing import Any

from members.models import Account, Member
from tests.factories import MemberFactory, StaffFactory
from tests.integration.harness import (
    CeleryWorker,
    HttpClient,
    SmtpSink,
    lines_of,
    outbox_template_of,
    temporary_password_in,
    wait_outbox_idle,
)
from tests.integration.steps import (
    api_bearer,
    api_call,
    api_client_create,
    desk_action,
    desk_login,
    member_login,
    register,
    registration_data,
)
from tickets.models import Ticket, TicketState


def _journey(ticket: Ticket) -> list[tuple[str, str, str, str]]:
    """The ticket's history as the journey goes: kinds, states and reasons (no ids, no dates)."""
    return [(e.kind, e.from_state, e.to_state, e.reason) for e in ticket.events.order_by("id")]


def _confirm_and_get_codes(
    live_app: Any, desk: HttpClient, smtp_sink: SmtpSink, reference: str, email: str
) -> str:
    """The agent confirms at the desk; the worker e-mails the codes; return the temporary one."""
    page = desk.get(f"/desk/tickets/{reference}/")
    assert reference in page.text
    desk_action(desk, reference, "confirm")
    assert Ticket.objects.get(reference=reference).state == TicketState.CONFIRMED
    codes = smtp_sink.wait_for(
        lambda m: email in m["To"] and outbox_template_of(m) == "credentials", timeout=60
    )
    assert reference in codes["Subject"]
    return temporary_password_in(codes)


def _member(number: str, first_name: str) -> Member:
    member: Member = MemberFactory(
        member_number=number,
        last_name="Lefèvre",
        first_name=first_name,
        birth_date=datetime.date(1982, 6, 21),
    )
    return member


def test_an_api_registration_reaches_the_codes_and_the_login_as_a_form_registration_does(
    live_app: Any, celery_worker: CeleryWorker, smtp_sink: SmtpSink
) -> None:
    by_form = _member("700200301", "Hélène")
    by_api = _member("700200302", "Gaël")
    StaffFactory(username="agent-api")
    portal = api_client_create("member-portal", "requests:write,requests:read")
    bearer = api_bearer(live_app.url, portal["client_id"], portal["client_secret"])

    # 1. One member registers on the page, the other through the insurer's portal (the API).
    form_reference = register(
        live_app.client(), registration_data(by_form, email="helene@example.net")
    )
    status, _, accepted = api_call(
        live_app.url,
        "/api/v1/requests/registration",
        body=json.dumps(
            {
                "member_number": by_api.member_number,
                "last_name": by_api.last_name,
                "first_name": by_api.first_name,
                "birth_date": by_api.birth_date.isoformat(),
                "email": "gael@example.net",
                "secret_question": "first_pet",
                "secret_answer": "Ébène the cat",
                "accept_terms": True,
            }
        ).encode(),
        headers=bearer,
    )
    assert status == 202, accepted
    api_reference = accepted["reference"]
    status, _, public = api_call(live_app.url, accepted["status_url"], headers=bearer)
    assert (status, public["status"]) == (200, "in_review")
    for email, reference in (
        ("helene@example.net", form_reference),
        ("gael@example.net", api_reference),
    ):
        ack = smtp_sink.wait_for(
            lambda m, e=email: e in m["To"] and outbox_template_of(m) == "acknowledgment"
        )
        assert reference in ack["Subject"]

    # 2. The agent confirms both at the desk; 3. the real worker sends both codes over SMTP.
    desk = live_app.client()
    desk_login(desk, "agent-api", "staff password 123")
    temporary = {
        number: _confirm_and_get_codes(live_app, desk, smtp_sink, reference, email)
        for number, reference, email in (
            (by_form.member_number, form_reference, "helene@example.net"),
            (by_api.member_number, api_reference, "gael@example.net"),
        )
    }
    codes = smtp_sink.wait_for(
        lambda m: "gael@example.net" in m["To"] and outbox_template_of(m) == "credentials"
    )
    assert by_api.member_number in lines_of(codes), "the member ID is not on a line of its own"
    celery_worker.wait_for_log(r"outbox message \d+ \(credentials\) sent")
    wait_outbox_idle()

    # 4. Each member logs in with the codes and lands on the forced password change.
    for number, password in temporary.items():
        assert member_login(live_app.client(), number, password).path == "/account/password/"
        account = Account.objects.get(username=number)
        assert account.password.startswith("argon2$argon2id$")
        assert account.must_change_password

    # Same journey: the same history rows and the same e-mails, whichever door was used.
    form_ticket = Ticket.objects.get(reference=form_reference)
    api_ticket = Ticket.objects.get(reference=api_reference)
    assert _journey(api_ticket) == _journey(form_ticket)
    assert sorted(api_ticket.outbox_messages.values_list("template", "status")) == sorted(
        form_ticket.outbox_messages.values_list("template", "status")
    )
    assert [outbox_template_of(m) for m in smtp_sink.messages_to("gael@example.net")] == [
        outbox_template_of(m) for m in smtp_sink.messages_to("helene@example.net")
    ]
