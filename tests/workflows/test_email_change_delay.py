"""E-mail changes wait (GUICHET_EMAIL_CHANGE_DELAY_HOURS): the old address is told and can veto;
nothing, codes least of all, goes to the new address before the change applies."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from members.models import Account, AccountStatus, EmailChangeOutcome, EmailChangeRequest
from members.secret_answers import secret_answer_hash
from tests.factories import MemberAccountFactory, MemberFactory
from tickets.models import EventKind, Ticket, TicketKind, TicketState
from workflows.models import EmailTemplate, NotMeLink, OutboxMessage, OutboxStatus
from workflows.services.accounts import (
    account_email_change_cancel,
    account_email_change_confirm,
    account_email_change_request,
    email_changes_apply_due,
)
from workflows.services.decisions import (
    codes_reissuable,
    ticket_approve,
    ticket_codes_reissue,
    ticket_confirm,
)
from workflows.services.delivery import outbox_deliver
from workflows.services.intake import RequestData, request_intake
from workflows.services.not_me import not_me_confirm
from workflows.tasks import email_changes_apply

pytestmark = pytest.mark.django_db

CONFIRM = re.compile(r"/account/email/confirm/([A-Za-z0-9_-]+)/")
NOT_ME = re.compile(r"/account/not-me/([A-Za-z0-9_-]+)/")
TEMP_LINE = re.compile(r"^([A-Za-z2-9]{10})$", re.M)
PASSWORD = "a long member passphrase"
DELAY = datetime.timedelta(hours=72)


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def account() -> Account:
    account: Account = MemberAccountFactory(
        member=MemberFactory(member_number="770000001", email="old@example.org"),
        email="old@example.org",
        secret_answer_hash=secret_answer_hash("Caramel"),
    )
    return account


def pending_change(
    account: Account, capture: Any, new: str = "new@example.org"
) -> tuple[EmailChangeRequest, str]:
    """Ask for a change and confirm it from the new address; the change and the veto token that
    the notice to the old address carries."""
    mail.outbox.clear()
    with capture(execute=True):
        account_email_change_request(account=account, new_email=new, language="en")
    [confirm_mail] = mail.outbox
    assert confirm_mail.to == [new]
    found = CONFIRM.search(confirm_mail.body)
    assert found
    mail.outbox.clear()
    with capture(execute=True):
        change = account_email_change_confirm(token=found.group(1), language="en")
    assert change is not None
    [notice] = mail.outbox
    assert notice.to == [account.email]
    veto = NOT_ME.search(notice.body)
    assert veto, notice.body
    return change, veto.group(1)


def email_on_file(account: Account) -> str:
    return Account.objects.get(pk=account.pk).email


def sent_to(address: str) -> list[Any]:
    return [message for message in mail.outbox if address in message.to]


def support_request(account: Account, kind: str, **fields: Any) -> Ticket:
    member = account.member
    assert member is not None
    return request_intake(
        data=RequestData(
            kind=kind,
            member_number=member.member_number,
            last_name=member.last_name,
            first_name=member.first_name,
            birth_date=member.birth_date,
            email=account.email,
            message="Please",
            **fields,
        )
    ).ticket


def decide(ticket: Ticket, agent: Account, supervisor: Account, capture: Any) -> None:
    """Confirm, and approve when the confirmation waits for a second person (four-eyes)."""
    with capture(execute=True):
        ticket_confirm(reference=ticket.reference, actor=agent)
    ticket.refresh_from_db()
    if ticket.state == TicketState.AWAITING_APPROVAL:
        with capture(execute=True):
            ticket_approve(reference=ticket.reference, actor=supervisor)


# --- The waiting time -------------------------------------------------------------------------


def test_a_confirmed_change_waits_the_delay_then_applies(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    assert change.confirmed_at is not None and change.applies_at == change.confirmed_at + DELAY
    notice = OutboxMessage.objects.get(template=EmailTemplate.EMAIL_CHANGE_PENDING)
    assert notice.recipient == "old@example.org"
    assert "n•••w@example.org" in mail.outbox[0].body  # the new address, masked
    assert email_on_file(account) == "old@example.org"
    mail.outbox.clear()
    assert email_changes_apply_due(now=change.applies_at - datetime.timedelta(seconds=1)) == 0
    assert email_on_file(account) == "old@example.org"
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=change.applies_at) == 1
    assert email_on_file(account) == "new@example.org"
    change.refresh_from_db()
    assert change.outcome == EmailChangeOutcome.APPLIED
    # Both addresses told once it applied, through the outbox.
    assert sorted(m.to[0] for m in mail.outbox) == ["new@example.org", "old@example.org"]
    assert set(
        OutboxMessage.objects.filter(status=OutboxStatus.SENT).values_list("template", flat=True)
    ) >= {EmailTemplate.EMAIL_CHANGED_OLD, EmailTemplate.EMAIL_CHANGED_NEW}


def test_the_apply_step_is_idempotent(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    due = change.applies_at + datetime.timedelta(minutes=1)  # type: ignore[operator]
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=due) == 1
    assert email_changes_apply_due(now=due) == 0
    assert email_changes_apply_due(now=due + DELAY) == 0
    assert OutboxMessage.objects.filter(template=EmailTemplate.EMAIL_CHANGED_NEW).count() == 1
    account.refresh_from_db()
    stamped = account.email_changed_at
    email_changes_apply_due(now=due + DELAY)
    account.refresh_from_db()
    assert account.email_changed_at == stamped


def test_the_beat_runs_the_apply_task(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "workflows.tasks.email_changes_apply" in tasks
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    EmailChangeRequest.objects.filter(pk=change.pk).update(
        applies_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply.delay().get() == 1
    assert email_on_file(account) == "new@example.org"


@override_settings(GUICHET_EMAIL_CHANGE_DELAY_HOURS=0)
def test_no_delay_applies_at_once(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        account_email_change_request(account=account, new_email="new@example.org", language="en")
    token = CONFIRM.search(mail.outbox[-1].body).group(1)  # type: ignore[union-attr]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        change = account_email_change_confirm(token=token, language="en")
    assert change is not None and change.outcome == EmailChangeOutcome.APPLIED
    assert email_on_file(account) == "new@example.org"
    assert sorted(m.to[0] for m in mail.outbox) == ["new@example.org", "old@example.org"]
    assert not OutboxMessage.objects.filter(template=EmailTemplate.EMAIL_CHANGE_PENDING).exists()


def _settings_load(delay: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUICHET_EMAIL_CHANGE_DELAY_HOURS": delay, "DEBUG": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from desk import settings; print(settings.GUICHET_EMAIL_CHANGE_DELAY_HOURS)",
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_delay_setting_is_read_from_the_environment() -> None:
    loaded = _settings_load("0")
    assert loaded.returncode == 0 and loaded.stdout.strip() == "0", loaded.stderr


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_a_bad_delay_setting_refuses_to_start(value: str) -> None:
    assert _settings_load(value).returncode != 0


# --- The veto ---------------------------------------------------------------------------------


def test_the_veto_during_the_wait_keeps_the_old_address(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, veto = pending_change(account, django_capture_on_commit_callbacks)
    assert NotMeLink.objects.get(template=EmailTemplate.EMAIL_CHANGE_PENDING).account == account
    page = Client().get(f"/account/not-me/{veto}/")
    assert page.status_code == 200  # GET explains, changes nothing
    change.refresh_from_db()
    assert change.is_pending
    mail.outbox.clear()
    page = Client().post(f"/account/not-me/{veto}/")
    assert page.status_code == 200 and "Your account is frozen." in page.content.decode()
    change.refresh_from_db()
    assert change.outcome == EmailChangeOutcome.VETOED
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=timezone.now() + 2 * DELAY) == 0
    account.refresh_from_db()
    assert account.email == "old@example.org" and account.status == AccountStatus.FROZEN
    acc = Ticket.objects.get(kind=TicketKind.ACCESS, member=account.member)
    created = acc.events.get(kind=EventKind.CREATED)
    assert created.data["email_changes_vetoed"] == 1
    assert not sent_to("new@example.org")


def _still_pending(change: EmailChangeRequest, account: Account) -> None:
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.is_pending and account.status == AccountStatus.ACTIVE
    assert not Ticket.objects.filter(kind=TicketKind.ACCESS).exists()


def test_a_forged_veto_link_is_refused_and_the_change_still_waits(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, veto = pending_change(account, django_capture_on_commit_callbacks)
    page = Client().post(f"/account/not-me/{veto[:-2]}xx/")
    assert page.status_code == 404 and "This link is not valid" in page.content.decode()
    _still_pending(change, account)


def test_an_expired_veto_link_is_refused_and_the_change_still_waits(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, veto = pending_change(account, django_capture_on_commit_callbacks)
    NotMeLink.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    page = Client().post(f"/account/not-me/{veto}/")
    assert page.status_code == 410 and "has expired" in page.content.decode()
    _still_pending(change, account)


def test_a_replayed_veto_link_changes_nothing_more(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    _, veto = pending_change(account, django_capture_on_commit_callbacks)
    Client().post(f"/account/not-me/{veto}/")
    # The account is unfrozen by the agents; a new change is asked and waits.
    Account.objects.filter(pk=account.pk).update(status=AccountStatus.ACTIVE)
    account.refresh_from_db()
    second, _ = pending_change(account, django_capture_on_commit_callbacks, new="two@example.org")
    again = Client().post(f"/account/not-me/{veto}/")
    assert again.status_code == 410 and "already used" in again.content.decode()
    second.refresh_from_db()
    assert second.is_pending
    assert Ticket.objects.filter(kind=TicketKind.ACCESS).count() == 1


def test_another_members_veto_link_leaves_this_change_waiting(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    other: Account = MemberAccountFactory(email="other@example.org")
    _, others_veto = pending_change(
        other, django_capture_on_commit_callbacks, new="other-new@example.org"
    )
    # Even posted from this member's own session, the link acts on its own account only.
    session = Client()
    session.force_login(account)
    session.post(f"/account/not-me/{others_veto}/")
    other.refresh_from_db()
    assert other.status == AccountStatus.FROZEN
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.is_pending and account.status == AccountStatus.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=timezone.now() + DELAY + DELAY) == 1
    assert email_on_file(account) == "new@example.org"
    assert email_on_file(other) == "other@example.org"


def test_the_veto_needs_the_csrf_token(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, veto = pending_change(account, django_capture_on_commit_callbacks)
    page = Client(enforce_csrf_checks=True).post(f"/account/not-me/{veto}/")
    assert page.status_code == 403
    _still_pending(change, account)


# --- What replaces or cancels a waiting change ------------------------------------------------


def test_a_new_request_replaces_the_waiting_change(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        account_email_change_request(account=account, new_email="third@example.org", language="en")
    change.refresh_from_db()
    assert change.outcome == EmailChangeOutcome.SUPERSEDED
    assert email_changes_apply_due(now=timezone.now() + 2 * DELAY) == 0
    assert email_on_file(account) == "old@example.org"


def test_a_closure_cancels_the_waiting_change(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    closure = support_request(account, TicketKind.CLOSURE)
    decide(closure, agent, supervisor, django_capture_on_commit_callbacks)
    change.refresh_from_db()
    assert change.outcome == EmailChangeOutcome.CLOSED
    assert email_changes_apply_due(now=timezone.now() + 2 * DELAY) == 0
    assert email_on_file(account) == "old@example.org"


def test_a_waiting_notice_for_a_change_gone_is_not_sent(account: Account) -> None:
    now = timezone.now()
    change = EmailChangeRequest.objects.create(
        account=account, new_email="n@example.org", confirmed_at=now, applies_at=now + DELAY
    )
    notice = OutboxMessage.objects.create(
        template=EmailTemplate.EMAIL_CHANGE_PENDING,
        recipient=account.email,
        account=account,
        context={"email_change_id": change.pk},
    )
    EmailChangeRequest.objects.filter(pk=change.pk).update(
        used_at=now, outcome=EmailChangeOutcome.CANCELLED
    )
    assert outbox_deliver(message_id=notice.pk) == "failed"
    assert not mail.outbox


# --- The member's page ------------------------------------------------------------------------


def test_the_account_page_shows_the_waiting_change_and_cancels_it(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    session = Client()
    session.force_login(account)
    page = session.get("/account/").content.decode()
    assert "A change of your e-mail address is waiting" in page
    assert "n•••w@example.org" in page and "new@example.org" not in page
    assert change.applies_at is not None
    assert f'datetime="{timezone.localtime(change.applies_at).isoformat()}"' in page
    refused = Client(enforce_csrf_checks=True)
    refused.force_login(account)
    assert refused.post("/account/email/cancel/").status_code == 403
    assert session.get("/account/email/cancel/").status_code == 405
    change.refresh_from_db()
    assert change.is_pending
    done = session.post("/account/email/cancel/", follow=True)
    assert "The change of your e-mail address is cancelled" in done.content.decode()
    change.refresh_from_db()
    assert change.outcome == EmailChangeOutcome.CANCELLED
    assert "is waiting" not in session.get("/account/").content.decode()
    activity = session.get("/account/activity/").content.decode()
    assert "n•••w@example.org" in activity and "cancelled on" in activity


def test_the_account_page_in_french(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    pending_change(account, django_capture_on_commit_callbacks)
    session = Client()
    session.force_login(account)
    page = session.get("/account/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Un changement de votre adresse e-mail est en attente" in page
    assert "Annuler ce changement" in page


def test_the_confirmation_page_says_when_the_change_applies(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        account_email_change_request(account=account, new_email="new@example.org", language="en")
    token = CONFIRM.search(mail.outbox[-1].body).group(1)  # type: ignore[union-attr]
    page = Client().post(f"/account/email/confirm/{token}/", follow=True).content.decode()
    assert "For your safety it takes effect on" in page


# --- Support-driven changes and codes ---------------------------------------------------------


def test_a_support_change_waits_too_and_its_history_tells(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = support_request(account, TicketKind.EMAIL_CHANGE, requested_email="desk@example.org")
    mail.outbox.clear()
    decide(ticket, agent, supervisor, django_capture_on_commit_callbacks)
    assert email_on_file(account) == "old@example.org"
    [notice] = mail.outbox
    assert notice.to == ["old@example.org"] and ticket.reference in notice.subject
    assert NOT_ME.search(notice.body)
    pending = ticket.events.get(reason="email_change_pending")
    assert pending.actor == supervisor or pending.actor == agent
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=timezone.now() + DELAY) == 1
    assert email_on_file(account) == "desk@example.org"
    applied = ticket.events.get(reason="email_changed")
    assert applied.actor is None  # the beat, not a person
    assert sorted(m.to[0] for m in mail.outbox) == ["desk@example.org", "old@example.org"]


def test_a_veto_of_a_support_change_is_in_its_ticket_history(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = support_request(account, TicketKind.EMAIL_CHANGE, requested_email="desk@example.org")
    mail.outbox.clear()
    decide(ticket, agent, supervisor, django_capture_on_commit_callbacks)
    veto = NOT_ME.search(mail.outbox[0].body).group(1)  # type: ignore[union-attr]
    Client().post(f"/account/not-me/{veto}/")
    cancelled = ticket.events.get(reason="email_change_cancelled")
    assert cancelled.data == {"outcome": EmailChangeOutcome.VETOED}
    assert email_changes_apply_due(now=timezone.now() + 2 * DELAY) == 0
    assert email_on_file(account) == "old@example.org"


def test_recovery_codes_for_a_new_address_wait_for_the_change(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = support_request(
        account,
        TicketKind.RECOVERY,
        requested_email="fresh@example.org",
        secret_answer="Caramel",
    )
    ticket.refresh_from_db()
    assert ticket.secret_answer_verified
    mail.outbox.clear()
    decide(ticket, agent, supervisor, django_capture_on_commit_callbacks)
    assert not OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).exists()
    assert not sent_to("fresh@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        email_changes_apply_due(now=timezone.now() + DELAY)
    codes = OutboxMessage.objects.get(template=EmailTemplate.CREDENTIALS)
    assert (codes.recipient, codes.ticket_id) == ("fresh@example.org", ticket.pk)
    [with_codes] = [m for m in sent_to("fresh@example.org") if TEMP_LINE.search(m.body)]
    assert ticket.reference in with_codes.subject


def test_codes_issued_during_the_wait_go_to_the_address_on_file(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    pending_change(account, django_capture_on_commit_callbacks)
    recovery = support_request(account, TicketKind.RECOVERY)
    mail.outbox.clear()
    decide(recovery, agent, supervisor, django_capture_on_commit_callbacks)
    codes = OutboxMessage.objects.get(template=EmailTemplate.CREDENTIALS)
    assert codes.recipient == "old@example.org" and codes.status == OutboxStatus.SENT
    assert not sent_to("new@example.org")


def test_the_worker_never_sends_codes_to_an_address_not_in_force(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    pending_change(account, django_capture_on_commit_callbacks)
    account.refresh_from_db()
    password_before = account.password
    mail.outbox.clear()
    queued = OutboxMessage.objects.create(
        template=EmailTemplate.CREDENTIALS,
        recipient="new@example.org",
        language="en",
        account=account,
    )
    assert outbox_deliver(message_id=queued.pk) == "failed"
    queued.refresh_from_db()
    assert queued.status == OutboxStatus.FAILED and "RecipientNotOnFile" in queued.last_error
    assert not mail.outbox
    account.refresh_from_db()
    assert account.password == password_before


def test_a_waiting_change_is_a_recent_change_for_the_takeover_signal(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    pending_change(account, django_capture_on_commit_callbacks)
    account.refresh_from_db()
    assert account.email_changed_at is None and account.email_change_requested_at is not None
    ticket = support_request(account, TicketKind.RECOVERY)
    ticket.refresh_from_db()
    assert "recent_credential_change" in [signal["code"] for signal in ticket.risk_signals]


def test_the_retention_purge_keeps_a_waiting_change(
    account: Account, django_capture_on_commit_callbacks: Any
) -> None:
    from workflows.services.retention import email_changes_purge

    change, _ = pending_change(account, django_capture_on_commit_callbacks)
    later = timezone.now() + datetime.timedelta(
        days=settings.GUICHET_EMAIL_CHANGE_RETENTION_DAYS + 1
    )
    assert email_changes_purge(now=later) == 0
    assert EmailChangeRequest.objects.filter(pk=change.pk).exists()


def test_the_change_form_says_the_change_waits(account: Account) -> None:
    session = Client()
    session.force_login(account)
    page = session.get("/account/email/").content.decode()
    assert "the change waits 72 hours before it applies" in page
    with override_settings(GUICHET_EMAIL_CHANGE_DELAY_HOURS=0):
        page = session.get("/account/email/").content.decode()
    assert "waits" not in page and "the change applies only once you follow it" in page


# --- A recovery's codes waiting with a change that never applies --------------------------------


def _recovery_waiting_with_its_codes(
    account: Account, agent: Account, supervisor: Account, capture: Any
) -> Ticket:
    ticket = support_request(
        account, TicketKind.RECOVERY, requested_email="fresh@example.org", secret_answer="Caramel"
    )
    decide(ticket, agent, supervisor, capture)
    ticket.refresh_from_db()
    assert ticket.state == TicketState.CONFIRMED
    assert not OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).exists()
    return ticket


def test_a_newer_request_replacing_a_recovery_that_waited_with_codes_says_so_and_offers_reissue(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    recovery = _recovery_waiting_with_its_codes(
        account, agent, supervisor, django_capture_on_commit_callbacks
    )
    assert not codes_reissuable(recovery)  # still waiting: its codes will follow the change
    newer = support_request(account, TicketKind.EMAIL_CHANGE, requested_email="desk@example.org")
    decide(newer, agent, supervisor, django_capture_on_commit_callbacks)
    not_sent = recovery.events.get(reason="codes_not_sent")
    assert not_sent.data["outcome"] == EmailChangeOutcome.SUPERSEDED
    assert codes_reissuable(recovery)
    # The change that replaced it applies; the recovery's codes never went anywhere.
    with django_capture_on_commit_callbacks(execute=True):
        assert email_changes_apply_due(now=timezone.now() + DELAY) == 1
    assert not OutboxMessage.objects.filter(template=EmailTemplate.CREDENTIALS).exists()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_codes_reissue(reference=recovery.reference, actor=agent)
    codes = OutboxMessage.objects.get(template=EmailTemplate.CREDENTIALS)
    # Re-issued to the address in force when sent, never to the one the replaced change named.
    assert (codes.recipient, codes.status) == ("desk@example.org", OutboxStatus.SENT)
    assert not sent_to("fresh@example.org")
    assert not codes_reissuable(recovery)


def test_the_desk_offers_the_reissue_when_a_recovery_lost_its_waiting_codes(
    account: Account,
    agent: Account,
    supervisor: Account,
    agent_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    recovery = _recovery_waiting_with_its_codes(
        account, agent, supervisor, django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=True):
        account_email_change_cancel(account=account)
    page = agent_client.get(f"/desk/tickets/{recovery.reference}/").content.decode()
    assert "reissue-codes" in page
    assert "no codes were sent" in page


def test_a_vetoed_recovery_change_offers_no_reissue(
    account: Account,
    agent: Account,
    supervisor: Account,
    django_capture_on_commit_callbacks: Any,
) -> None:
    recovery = _recovery_waiting_with_its_codes(
        account, agent, supervisor, django_capture_on_commit_callbacks
    )
    [notice] = [m for m in mail.outbox if m.to == ["old@example.org"] and NOT_ME.search(m.body)]
    veto = NOT_ME.search(notice.body)
    assert veto
    not_me_confirm(token=veto.group(1))
    recovery.refresh_from_db()
    assert recovery.events.get(reason="codes_not_sent").data["outcome"] == EmailChangeOutcome.VETOED
    assert not codes_reissuable(recovery)  # the frozen account's own ticket decides what follows
