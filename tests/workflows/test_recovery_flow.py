"""Forgotten codes and support requests, from the form to the agent's decision."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from members import throttling
from members.models import Account, AccountStatus, Member
from members.secret_answers import secret_answer_hash
from members.throttling import login_blocked
from tests.factories import MemberAccountFactory, MemberFactory
from tests.requests import identity_form
from tickets.models import Channel, EventKind, Ticket, TicketKind, TicketState
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus, RequestAlias
from workflows.services.accounts import email_changes_apply_due
from workflows.services.decisions import ticket_approve, ticket_confirm
from workflows.services.delivery import outbox_deliver
from workflows.services.intake import RequestData, request_intake

pytestmark = pytest.mark.django_db

PASSWORD = "a long member passphrase"
TEMP_LINE = re.compile(r"^([A-Za-z2-9]{10})$", re.M)


@pytest.fixture
def member(db: None) -> Account:
    return MemberAccountFactory(
        member=MemberFactory(member_number="710000001", email="onfile@example.org"),
        email="onfile@example.org",
        secret_answer_hash=secret_answer_hash("Saint-Étienne"),
    )


def recover(client: Client, capture: Any, **overrides: str) -> Any:
    data = identity_form(**{"member_number": "710000001", **overrides})
    with capture(execute=True):
        return client.post("/recover/", data)


def can_log_in(password: str = PASSWORD, username: str = "710000001") -> bool:
    response = Client().post("/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_codes_go_to_the_e_mail_on_file_never_to_the_typed_one(
    client: Client, member: Account, agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    recover(client, django_capture_on_commit_callbacks)
    ticket = Ticket.objects.get(kind=TicketKind.RECOVERY)
    [ack] = mail.outbox
    assert ack.to == ["typed@example.org"]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    [codes] = mail.outbox
    assert codes.to == ["onfile@example.org"]
    temporary = TEMP_LINE.findall(codes.body)[-1]
    assert not can_log_in(PASSWORD)  # the new temporary password replaced it
    assert can_log_in(temporary)


def later(seconds: float) -> Any:
    """A clock `seconds` ahead of the real one."""
    start = time.time()
    return lambda: start + seconds


def test_twenty_requests_change_nothing_on_the_account(
    client: Client,
    member: Account,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/security.md §5: no lock, no new password, the current password still works."""
    before = Account.objects.get(pk=member.pk)
    with override_settings(
        GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR=100, GUICHET_SUBMISSIONS_PER_IP_PER_HOUR=100
    ):
        for i in range(10):
            recover(client, django_capture_on_commit_callbacks, email=f"r{i}@example.org")
            recover(
                client,
                django_capture_on_commit_callbacks,
                email_lost="on",
                new_email="x@example.org",
                secret_answer=f"wrong {i}",
            )
    after = Account.objects.get(pk=member.pk)
    assert (after.password, after.email, after.must_change_password, after.is_active) == (
        before.password,
        before.email,
        False,
        True,
    )
    assert not OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).exists()
    assert Ticket.objects.filter(kind=TicketKind.RECOVERY).count() == 1  # the rest attached
    # Only the request's 3 answer tries count as login failures: a 1 s delay, never the lock.
    monkeypatch.setattr(throttling, "_now", later(2))
    assert not login_blocked(portal="member", username="710000001", ip="10.0.0.9")
    assert can_log_in(PASSWORD)


def test_a_right_secret_answer_moves_codes_to_the_new_address_and_tells_the_old(
    client: Client,
    member: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Codes to an address not on file: a second person approves (four-eyes), then both told."""
    recover(
        client,
        django_capture_on_commit_callbacks,
        email_lost="on",
        new_email="fresh@example.org",
        secret_answer="  saint etienne ",  # case, accents, spacing do not count
    )
    ticket = Ticket.objects.get()
    assert ticket.secret_answer_verified
    assert Account.objects.get(pk=member.pk).email == "onfile@example.org"  # not before the agent
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.AWAITING_APPROVAL
    assert mail.outbox == [] and Account.objects.get(pk=member.pk).email == "onfile@example.org"
    with django_capture_on_commit_callbacks(execute=True):
        ticket_approve(reference=ticket.reference, actor=supervisor)
    # The change waits (GUICHET_EMAIL_CHANGE_DELAY_HOURS), and the codes with it: the old
    # address is told at once (with its veto link); nothing goes to the new one yet.
    [waiting] = mail.outbox
    assert waiting.to == ["onfile@example.org"] and ticket.reference in waiting.subject
    assert not TEMP_LINE.search(waiting.body)
    assert Account.objects.get(pk=member.pk).email == "onfile@example.org"
    assert not OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).exists()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        email_changes_apply_due(now=timezone.now() + timedelta(hours=72, seconds=1))
    sent = {tuple(m.to): m for m in mail.outbox}
    assert set(sent) == {("onfile@example.org",), ("fresh@example.org",)}
    fresh = [m for m in mail.outbox if m.to == ["fresh@example.org"]]
    assert sum(bool(TEMP_LINE.search(m.body)) for m in fresh) == 1
    assert not TEMP_LINE.search(sent[("onfile@example.org",)].body)
    assert ticket.reference in sent[("onfile@example.org",)].subject
    assert Account.objects.get(pk=member.pk).email == "fresh@example.org"


def test_three_wrong_answers_close_the_self_service_change(
    client: Client, member: Account, agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    """docs/security.md §6: tries counted on the request; then support only; the owner is told."""
    for answer in ("Lyon", "Paris", "Nantes", "Saint-Étienne"):
        mail.outbox.clear()
        response = recover(
            client,
            django_capture_on_commit_callbacks,
            email_lost="on",
            new_email="fresh@example.org",
            secret_answer=answer,
        )
        assert response.status_code == 302  # no hint which field was wrong
    ticket = Ticket.objects.get()
    assert ticket.secret_answer_failures == 3
    assert not ticket.secret_answer_verified  # the 4th, right, answer came too late
    assert ticket.state == TicketState.IDENTITY_MISMATCH  # routed to support's queue
    reasons = list(
        ticket.events.filter(kind=EventKind.SECRET_ANSWER).values_list("reason", flat=True)
    )
    assert reasons == ["wrong", "wrong", "wrong", "closed"]
    locked = OutboxMessage.objects.get(template=EmailTemplate.SECRET_ANSWER_LOCKED)
    assert locked.recipient == "onfile@example.org"
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert Account.objects.get(pk=member.pk).email == "onfile@example.org"


def test_wrong_answers_count_as_failed_logins(
    client: Client, member: Account, django_capture_on_commit_callbacks: Any
) -> None:
    recover(
        client,
        django_capture_on_commit_callbacks,
        email_lost="on",
        new_email="fresh@example.org",
        secret_answer="Lyon",
    )
    recover(
        client,
        django_capture_on_commit_callbacks,
        email_lost="on",
        new_email="fresh@example.org",
        secret_answer="Paris",
    )
    assert not login_blocked(portal="member", username="710000001", ip="10.0.0.1")
    recover(
        client,
        django_capture_on_commit_callbacks,
        email_lost="on",
        new_email="fresh@example.org",
        secret_answer="Nantes",
    )
    # Three failures: the account is in the growing-delay zone like after 3 bad passwords.
    assert login_blocked(portal="member", username="710000001", ip="10.0.0.1")


def test_the_secret_answer_is_stored_only_as_a_hash(
    client: Client, member: Account, django_capture_on_commit_callbacks: Any
) -> None:
    recover(
        client,
        django_capture_on_commit_callbacks,
        email_lost="on",
        new_email="fresh@example.org",
        secret_answer="Marseille-Provence",
    )
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (table names from the schema)
            dump.extend(str(row) for row in cursor.fetchall())
    text = "\n".join(dump).casefold()
    assert "marseille" not in text


def test_a_repeat_request_attaches_to_the_open_one(
    client: Client, member: Account, django_capture_on_commit_callbacks: Any
) -> None:
    first = recover(client, django_capture_on_commit_callbacks)
    second = recover(client, django_capture_on_commit_callbacks, email="other@example.org")
    ticket = Ticket.objects.get()
    assert first["Location"] == f"/requests/{ticket.reference}/"
    alias = RequestAlias.objects.get()
    assert second["Location"] == f"/requests/{alias.reference}/"
    event = ticket.events.get(kind=EventKind.ATTACHED)
    assert event.data["alias"] == alias.reference
    assert event.data["submitted"]["email"] == "other@example.org"
    assert client.get(second["Location"]).status_code == 200
    # A different kind for the same member is a new ticket.
    request_intake(data=_support(TicketKind.ACCESS))
    assert Ticket.objects.count() == 2


def _support(kind: str, channel: str = Channel.WEB, **extra: Any) -> RequestData:
    return RequestData(
        kind=kind,
        member_number="710000001",
        last_name="Martin",
        first_name="Zoë",
        birth_date=Member.objects.get(member_number="710000001").birth_date,
        email="typed@example.org",
        message="Letter of 3 March",
        channel=channel,
        **extra,
    )


@pytest.mark.parametrize("kind", [TicketKind.ACCESS, TicketKind.CLOSURE, TicketKind.EMAIL_CHANGE])
@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.LETTER, Channel.EMAIL])
def test_agents_open_support_tickets_on_a_members_behalf(
    member: Account, agent: Account, kind: str, channel: str
) -> None:
    extra = {"requested_email": "new@example.org"} if kind == TicketKind.EMAIL_CHANGE else {}
    ticket = request_intake(data=_support(kind, channel, **extra), actor=agent).ticket
    assert (ticket.kind, ticket.channel, ticket.created_by, ticket.member) == (
        kind,
        channel,
        agent,
        member.member,
    )
    created = ticket.events.get(kind=EventKind.CREATED)
    assert (created.actor, created.reason) == (agent, channel)


def test_codes_never_received_always_issues_a_new_password(
    member: Account, agent: Account, django_capture_on_commit_callbacks: Any
) -> None:
    """docs/security.md §12: a reissue never re-sends; the previous temporary password dies."""
    passwords = []
    for _ in range(2):
        ticket = request_intake(data=_support(TicketKind.ACCESS)).ticket
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            ticket_confirm(reference=ticket.reference, actor=agent)
        [codes] = [m for m in mail.outbox if m.to == ["onfile@example.org"]]
        passwords.append(TEMP_LINE.findall(codes.body)[-1])
    assert passwords[0] != passwords[1]
    assert not can_log_in(passwords[0])
    assert can_log_in(passwords[1])


def test_closing_an_account_refuses_login_generically_and_tells_the_member(
    member: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = request_intake(data=_support(TicketKind.CLOSURE)).ticket
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    # A closure needs a second person (four-eyes): nothing happens before the approval.
    assert Account.objects.get(pk=member.pk).status == AccountStatus.ACTIVE
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        ticket_approve(reference=ticket.reference, actor=supervisor)
    assert Account.objects.get(pk=member.pk).status == AccountStatus.CLOSED
    [notice] = mail.outbox
    assert notice.to == ["onfile@example.org"] and ticket.reference in notice.subject
    closed = Client().post("/login/", {"username": "710000001", "password": PASSWORD})
    unknown = Client().post("/login/", {"username": "719999999", "password": PASSWORD})
    assert closed.status_code == unknown.status_code == 200
    assert closed.content.replace(b"710000001", b"X") == unknown.content.replace(
        b"719999999", b"X"
    ) or _same_without_csrf(closed.content, unknown.content)


def test_codes_queued_before_a_closure_are_never_issued(
    member: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Codes queued (a recovery confirmed), then the account closed before the worker sends
    them: the closure wins, no password is set and nothing is e-mailed."""
    queued = OutboxMessage.objects.create(
        template=EmailTemplate.CREDENTIALS, recipient=member.email, language="en", account=member
    )
    ticket = request_intake(data=_support(TicketKind.CLOSURE)).ticket
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
        ticket_approve(reference=ticket.reference, actor=supervisor)
    password_before = Account.objects.get(pk=member.pk).password
    mail.outbox.clear()
    assert outbox_deliver(message_id=queued.pk) == "failed"
    queued.refresh_from_db()
    assert queued.status == OutboxStatus.FAILED and "AccountClosed" in queued.last_error
    assert mail.outbox == []
    assert Account.objects.get(pk=member.pk).password == password_before


def _same_without_csrf(a: bytes, b: bytes) -> bool:
    mask = re.compile(rb'value="[^"]{20,}"')
    return mask.sub(b"", a.replace(b"710000001", b"X")) == mask.sub(
        b"", b.replace(b"719999999", b"X")
    )


def test_an_e_mail_change_through_support_needs_two_people_and_leaves_history(
    member: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """docs/security.md §18 (support path): nothing changes before the decision and its
    approval by a second person (four-eyes); then both addresses are told."""
    ticket = request_intake(
        data=_support(TicketKind.EMAIL_CHANGE, requested_email="new@example.org")
    ).ticket
    assert Account.objects.get(pk=member.pk).email == "onfile@example.org"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    assert Account.objects.get(pk=member.pk).email == "onfile@example.org"
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        ticket_approve(reference=ticket.reference, actor=supervisor)
    # Approved, the change waits like a member's own: the old address is told, nothing else.
    assert Account.objects.get(pk=member.pk).email == "onfile@example.org"
    assert [m.to[0] for m in mail.outbox] == ["onfile@example.org"]
    assert ticket.events.filter(kind=EventKind.OUTCOME, reason="email_change_pending").exists()
    assert not ticket.events.filter(kind=EventKind.OUTCOME, reason="email_changed").exists()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        email_changes_apply_due(now=timezone.now() + timedelta(hours=72, seconds=1))
    assert Account.objects.get(pk=member.pk).email == "new@example.org"
    assert sorted(m.to[0] for m in mail.outbox) == ["new@example.org", "onfile@example.org"]
    assert ticket.events.filter(kind=EventKind.OUTCOME, reason="email_changed").exists()
