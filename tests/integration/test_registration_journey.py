"""Issue 2's spine on real services: register → agent confirms → worker e-mails codes → forced
change → only the new password works."""

from __future__ import annotations

import datetime
import re

from members.models import Account
from tests.factories import MemberFactory, StaffFactory
from tests.integration.harness import (
    CeleryWorker,
    SmtpSink,
    lines_of,
    outbox_template_of,
    temporary_password_in,
    text_part,
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

NEW_PASSWORD = "Velvet harbour lanterns 47"


def test_a_member_registers_gets_codes_and_must_replace_the_temporary_password(
    live_app, celery_worker: CeleryWorker, smtp_sink: SmtpSink
) -> None:
    member = MemberFactory(
        member_number="700100200",
        last_name="Dubois",
        first_name="Amélie",
        birth_date=datetime.date(1975, 3, 9),
        email="registry.amelie@example.org",
    )
    typed_email = "amelie.dubois@example.net"
    StaffFactory(username="agent-it")

    # 1. The member registers over HTTP and gets the neutral acknowledgment.
    browser = live_app.client()
    reference = register(browser, registration_data(member, email=typed_email))
    ack = smtp_sink.wait_for(
        lambda m: typed_email in m["To"] and outbox_template_of(m) == "acknowledgment"
    )
    assert reference in ack["Subject"]
    assert reference in text_part(ack)
    # Only what the member typed may be echoed (the greeting); identifiers never are.
    for identifier in ("700100200", "09/03/1975", "1975-03-09", "registry.amelie"):
        assert identifier not in text_part(ack), f"the acknowledgment shows {identifier!r}"
    assert Ticket.objects.get(reference=reference).state == TicketState.PENDING

    # 2. An agent logs in at /desk/login/ and confirms over HTTP.
    desk = live_app.client()
    desk_login(desk, "agent-it", "staff password 123")
    page = desk.get(f"/desk/tickets/{reference}/")
    assert "Amélie" in page.text and reference in page.text
    desk_action(desk, reference, "confirm")
    assert Ticket.objects.get(reference=reference).state == TicketState.CONFIRMED

    # 3. The real worker issues and e-mails the codes to the address typed on the request.
    codes = smtp_sink.wait_for(
        lambda m: typed_email in m["To"] and outbox_template_of(m) == "credentials"
    )
    assert reference in codes["Subject"]
    assert member.member_number in lines_of(codes), "the member ID is not on a line of its own"
    temporary = temporary_password_in(codes)
    celery_worker.wait_for_log(r"outbox message \d+ \(credentials\) sent")
    # The worker's history row carries the id of the desk request that queued its task.
    events = Ticket.objects.get(reference=reference).events
    confirmed = events.get(kind=EventKind.TRANSITION, to_state=TicketState.CONFIRMED)
    issued = events.get(kind=EventKind.OUTCOME, reason="temporary_password_issued")
    assert re.fullmatch(r"[0-9a-f]{32}", confirmed.request_id), confirmed.request_id
    assert issued.request_id == confirmed.request_id
    account = Account.objects.get(username=member.member_number)
    assert account.password.startswith("argon2$argon2id$")
    assert account.must_change_password

    # 4. Login with the temporary password lands on the password change, and nothing else opens.
    member_browser = live_app.client()
    landed = member_login(member_browser, member.member_number, temporary)
    assert landed.path == "/account/password/"
    for elsewhere in ("/account/", "/", "/help/", "/register/", f"/requests/{reference}/"):
        assert member_browser.get(elsewhere).path == "/account/password/", elsewhere
    token = landed.form().fields["csrfmiddlewaretoken"]
    refused = member_browser.post(
        "/register/",
        {**registration_data(member, email=typed_email), "csrfmiddlewaretoken": token},
        follow=False,
    )
    assert refused.status == 403
    assert Ticket.objects.count() == 1

    # 5. The member chooses a password; the temporary one stops working, the new one works.
    changed = member_browser.submit(
        "/account/password/",
        {"old_password": temporary, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status == 200
    assert changed.path == "/account/"
    assert member_browser.get("/help/").path == "/help/"
    logged_out = member_browser.submit("/account/", {}, action="/logout/")
    assert logged_out.path == "/"

    with_temporary = live_app.client()
    refused_login = member_login(with_temporary, member.member_number, temporary)
    assert refused_login.path == "/login/"
    assert with_temporary.get("/account/").path == "/login/"

    with_new = live_app.client()
    assert member_login(with_new, member.member_number, NEW_PASSWORD).path == "/account/"
    assert with_new.get("/account/").status == 200

    account.refresh_from_db()
    assert account.password.startswith("argon2$argon2id$")
    assert not account.must_change_password
    assert account.temporary_password_expires_at is None
    wait_outbox_idle()
