"""Issue 2's mismatch path on real services: a typo suspends the request, an agent rejects it,
and neither the acknowledgment nor the rejection tells the member anything from the registry."""

from __future__ import annotations

import datetime

from members.models import Account
from tests.factories import MemberFactory, StaffFactory
from tests.integration.harness import (
    SmtpSink,
    html_part,
    outbox_template_of,
    text_part,
    wait_outbox_idle,
)
from tests.integration.steps import desk_action, desk_login, register, registration_data
from tickets.models import RejectionReason, Ticket, TicketState

BIRTH = datetime.date(1962, 11, 30)
REGISTRY_NIR = "262117512345682"
COMMENT = "Typed Lefebre, the registry says Lefebvre; NIR 262117512345682 checked"


def _masked(message, reference: str) -> tuple[str, str, str]:
    """Subject, text and HTML with the reference masked: what must not differ between outcomes."""
    return tuple(
        part.replace(reference, "REF-XXXXXXXX")
        for part in (str(message["Subject"]), text_part(message), html_part(message))
    )


def _mail(sink: SmtpSink, address: str, template: str):
    return sink.wait_for(lambda m: address in m["To"] and outbox_template_of(m) == template)


def test_a_name_typo_is_suspended_then_rejected_with_wording_that_reveals_nothing(
    live_app, celery_worker, smtp_sink: SmtpSink
) -> None:
    registry = MemberFactory(
        member_number="700300400",
        nir=REGISTRY_NIR,
        last_name="Lefebvre",
        first_name="Hélène",
        birth_date=BIRTH,
        email="registry.helene@example.org",
    )
    # A homonym spelled as typed: the same name and birth date give a clean match for her.
    homonym = MemberFactory(
        member_number="700300401", last_name="Lefebre", first_name="Hélène", birth_date=BIRTH
    )
    StaffFactory(username="agent-mm")
    typed = {"last_name": "Lefebre", "first_name": "Hélène"}

    # 1. Three submissions with the same typed name: typo, clean match, unknown member ID.
    browser = live_app.client()
    typo_ref = register(browser, registration_data(registry, email="typo@example.net", **typed))
    clean_ref = register(browser, registration_data(homonym, email="clean@example.net", **typed))
    unknown_ref = register(
        browser,
        registration_data(
            registry, email="unknown@example.net", member_number="799999999", **typed
        ),
    )
    assert Ticket.objects.get(reference=typo_ref).state == TicketState.IDENTITY_MISMATCH
    assert Ticket.objects.get(reference=clean_ref).state == TicketState.PENDING
    assert Ticket.objects.get(reference=unknown_ref).state == TicketState.IDENTITY_MISMATCH

    # 2. The acknowledgments are the same whatever the registry said.
    acks = {
        ref: _masked(_mail(smtp_sink, address, "acknowledgment"), ref)
        for ref, address in (
            (typo_ref, "typo@example.net"),
            (clean_ref, "clean@example.net"),
            (unknown_ref, "unknown@example.net"),
        )
    }
    assert acks[typo_ref] == acks[clean_ref] == acks[unknown_ref]
    assert "Lefebvre" not in "".join(acks[typo_ref])

    # 3. The agent sees the difference on the desk and rejects with a reason and a comment.
    desk = live_app.client()
    desk_login(desk, "agent-mm", "staff password 123")
    page = desk.get(f"/desk/tickets/{typo_ref}/")
    assert "Lefebvre" in page.text and "Lefebre" in page.text
    desk_action(
        desk,
        typo_ref,
        "reject",
        {"reason": RejectionReason.IDENTITY_NOT_CONFIRMED, "comment": COMMENT},
    )
    desk_action(desk, unknown_ref, "reject", {"reason": RejectionReason.NOT_IN_REGISTRY})
    typo_ticket = Ticket.objects.get(reference=typo_ref)
    assert typo_ticket.state == TicketState.REJECTED
    assert typo_ticket.rejection_reason == RejectionReason.IDENTITY_NOT_CONFIRMED

    # 4. The rejection e-mail names the reference and nothing from the registry or the desk.
    rejection = _mail(smtp_sink, "typo@example.net", "rejection")
    assert typo_ref in rejection["Subject"] and typo_ref in text_part(rejection)
    everything = "\n".join((str(rejection["Subject"]), text_part(rejection), html_part(rejection)))
    for revealing in (
        "Lefebvre",
        "registry.helene",
        REGISTRY_NIR,
        "30/11/1962",
        "1962-11-30",
        COMMENT,
        "identity_not_confirmed",
        str(RejectionReason.IDENTITY_NOT_CONFIRMED.label),
        "agent-mm",
    ):
        assert revealing not in everything, f"the rejection e-mail reveals {revealing!r}"
    # The reason code does not change the wording: a registry miss reads exactly the same.
    unknown_rejection = _mail(smtp_sink, "unknown@example.net", "rejection")
    assert _masked(rejection, typo_ref) == _masked(unknown_rejection, unknown_ref)

    # 5. Nothing else was sent and no account exists for the registry member.
    wait_outbox_idle()
    assert [outbox_template_of(m) for m in smtp_sink.messages_to("typo@example.net")] == [
        "acknowledgment",
        "rejection",
    ]
    assert smtp_sink.messages_to("registry.helene@example.org") == []
    assert not Account.objects.filter(member=registry).exists()
