"""The veto of a waiting e-mail change, on real services: the member asks over HTTP, the new
address confirms, the OLD address gets the veto link over SMTP, the link is followed and
confirmed over HTTP (with its CSRF token), then the apply step runs past the delay: the address
on file is still the old one and the new address got nothing but its confirmation link."""

from __future__ import annotations

import datetime
import re
import urllib.parse

from django.utils import timezone

from members.models import Account, AccountStatus, EmailChangeOutcome, EmailChangeRequest
from tests.factories import MemberAccountFactory, MemberFactory
from tests.integration.harness import (
    CeleryWorker,
    SmtpSink,
    html_part,
    outbox_template_of,
    text_part,
    wait_outbox_idle,
)
from tests.integration.steps import member_login
from tickets.models import Ticket, TicketKind
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.accounts import email_changes_apply_due

PASSWORD = "an old member passphrase"
OLD = "claire.onfile@example.org"
NEW = "claire.elsewhere@example.net"
CONFIRM_LINK = re.compile(r"https?://\S+(/account/email/confirm/[A-Za-z0-9_-]+/)")
VETO_LINK = re.compile(r"https?://\S+(/account/not-me/[A-Za-z0-9_-]+/)")


def _member(number: str) -> Account:
    account = MemberAccountFactory(member=MemberFactory(member_number=number, email=OLD), email=OLD)
    account.set_password(PASSWORD)
    account.save()
    return account


def test_the_old_address_vetoes_a_waiting_change_and_stays_in_force(
    live_app, celery_worker: CeleryWorker, smtp_sink: SmtpSink
) -> None:
    account = _member("700500600")
    browser = live_app.client()
    assert member_login(browser, "700500600", PASSWORD).path == "/account/"
    asked = browser.submit("/account/email/", {"password": PASSWORD, "new_email": NEW})
    assert asked.path == "/account/", asked.path

    # The new address proves it is reachable: its link, confirmed with the page's form.
    confirm = smtp_sink.wait_for(
        lambda m: NEW in m["To"] and outbox_template_of(m) == EmailTemplate.EMAIL_CHANGE_CONFIRM
    )
    found = CONFIRM_LINK.search(text_part(confirm))
    assert found, text_part(confirm)
    confirmed = browser.submit(found.group(1), {})
    assert confirmed.path == "/account/", confirmed.path
    change = EmailChangeRequest.objects.get(account=account)
    assert change.is_pending and change.applies_at is not None
    assert Account.objects.get(pk=account.pk).email == OLD
    waiting = browser.get("/account/")
    assert "c•••e@example.net" in waiting.text and NEW not in waiting.text

    # The old address is told at once, over SMTP, with the single-use veto link.
    notice = smtp_sink.wait_for(
        lambda m: OLD in m["To"] and outbox_template_of(m) == EmailTemplate.EMAIL_CHANGE_PENDING
    )
    veto = VETO_LINK.search(text_part(notice))
    assert veto, text_part(notice)
    assert veto.group(1) in urllib.parse.unquote(html_part(notice))

    # Followed from the old mailbox (no session): GET explains, the form's POST (CSRF) vetoes.
    stranger = live_app.client()
    explained = stranger.get(veto.group(1))
    assert explained.status == 200
    assert EmailChangeRequest.objects.get(pk=change.pk).is_pending
    vetoed = stranger.submit(veto.group(1), {})
    assert vetoed.status == 200, vetoed.status
    change.refresh_from_db()
    assert change.outcome == EmailChangeOutcome.VETOED
    assert Account.objects.get(pk=account.pk).status == AccountStatus.FROZEN
    assert Ticket.objects.filter(kind=TicketKind.ACCESS, member=account.member).exists()

    # The apply step, with a time well past the delay: nothing to apply.
    assert email_changes_apply_due(now=change.applies_at + datetime.timedelta(hours=1)) == 0
    assert email_changes_apply_due(now=timezone.now() + datetime.timedelta(days=30)) == 0
    wait_outbox_idle()
    assert Account.objects.get(pk=account.pk).email == OLD
    to_new = smtp_sink.messages_to(NEW)
    assert [outbox_template_of(m) for m in to_new] == [EmailTemplate.EMAIL_CHANGE_CONFIRM]
    assert list(OutboxMessage.objects.filter(recipient=NEW).values_list("template", flat=True)) == [
        EmailTemplate.EMAIL_CHANGE_CONFIRM
    ]
