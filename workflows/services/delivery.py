"""What a worker does with one outbox message: claim, (issue codes), send, record."""

from __future__ import annotations

import logging
import os
import signal
import smtplib

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from core.metrics import CODES_DELIVERY_SECONDS, OUTBOX_SENDS
from members.masking import mask_email
from tickets.models import Ticket
from workflows.emails import build_email
from workflows.models import EmailTemplate, OutboxMessage
from workflows.services.accounts import email_change_notice_pending, email_change_token_issue
from workflows.services.credentials import (
    AccountClosed,
    AccountFrozen,
    RecipientNotOnFile,
    credentials_issue,
)
from workflows.services.not_me import NOT_ME_TEMPLATES, not_me_link_issue
from workflows.services.outbox import (
    LeaseKeeper,
    outbox_claim,
    outbox_is_leased,
    outbox_lease_renew,
    outbox_mark_failed,
    outbox_mark_sent,
)

logger = logging.getLogger(__name__)

# The steps of a credentials delivery where a fault test may kill the worker (docs/security.md §21).
FAULT_POINTS = ("after_claim", "after_hash_commit", "after_smtp_accept", "after_sent_mark")


class FaultInjected(RuntimeError):
    """Raised at a fault point named in GUICHET_FAULT_RAISE (fault tests only)."""


def fault_point(name: str) -> None:
    """Kill this process at `name` when a fault test asks for it (never honoured in production).

    `GUICHET_FAULT_INJECT=<point>` names the step; `GUICHET_FAULT_ONCE_FILE`, when set, is a file
    created at the first kill so the redelivered task runs through. `GUICHET_FAULT_RAISE` lists
    points (comma-separated) that raise `FaultInjected` instead, once each when the once-file is
    set (marker `<once-file>.<point>`).
    """
    if not settings.GUICHET_ALLOW_FAULT_INJECTION:
        return
    if name in os.environ.get("GUICHET_FAULT_RAISE", "").split(","):
        once = os.environ.get("GUICHET_FAULT_ONCE_FILE")
        try:
            if once:
                with open(f"{once}.{name}", "x", encoding="ascii") as marker:
                    marker.write(name)
        except FileExistsError:
            pass
        else:
            raise FaultInjected(f"fault injected at {name}")
    if os.environ.get("GUICHET_FAULT_INJECT") != name:
        return
    once = os.environ.get("GUICHET_FAULT_ONCE_FILE")
    if once:
        try:
            with open(once, "x", encoding="ascii") as marker:
                marker.write(name)
        except FileExistsError:
            return
    if os.environ.get("GUICHET_FAULT_KILL") == "parent" and _parent_is_worker():
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _parent_is_worker() -> bool:
    """Only a prefork child's parent (the main worker) may be killed, never a test runner."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
            return b"celery" in cmdline.read()
    except OSError:
        return False


def is_permanent(exc: BaseException) -> bool:
    """A 5xx answer from the mail server: retrying the same message cannot succeed."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


class EmailChangeGone(Exception):
    """The e-mail change this link was for was superseded or applied: nothing to send."""


@sensitive_variables("token")
def _email_change_link(context: dict[str, object]) -> str:
    """A fresh single-use token for the link (only its hash is stored), as a portal path."""
    token = email_change_token_issue(change_id=int(str(context.get("email_change_id") or 0)))
    if token is None:
        raise EmailChangeGone("e-mail change no longer pending")
    return reverse("email_change_confirm", kwargs={"token": token})


def _email_change_waiting(context: dict[str, object]) -> dict[str, object]:
    """What the old address is told of a change still waiting: when it applies, to what (masked)."""
    change = email_change_notice_pending(change_id=int(str(context.get("email_change_id") or 0)))
    if change is None:
        raise EmailChangeGone("e-mail change no longer waiting")
    return {"applies_at": change.applies_at, "new_email_masked": mask_email(change.new_email)}


def outbox_deliver(*, message_id: int) -> str:
    """Send one message at least once; a second concurrent or later run is a no-op.

    The claim is a lease with a fencing token (no session lock: safe behind PgBouncer in
    transaction mode, docs/operations.md). While the send runs a `LeaseKeeper` renews the lease,
    so a mail server slower than the lease does not let the sweep hand the message to a second
    worker; a sender whose lease was lost anyway never marks the message (docs/security.md §22).
    """
    outcome = _outbox_deliver(message_id=message_id)
    OUTBOX_SENDS.labels(outcome).inc()
    return outcome


def _outbox_deliver(*, message_id: int) -> str:
    message = outbox_claim(message_id=message_id)
    if message is None:
        if outbox_is_leased(message_id=message_id):  # another worker, alive, is sending it
            logger.info("outbox message %s is being sent by another worker", message_id)
            return "busy"
        return "skipped"
    with LeaseKeeper(message) as lease:
        return _outbox_send_leased(message=message, lease=lease)


@sensitive_variables("secret_context", "email", "token")
def _outbox_send_leased(*, message: OutboxMessage, lease: LeaseKeeper) -> str:
    """(Issue codes), send and record one message this worker holds the lease on."""
    fault_point("after_claim")
    secret_context: dict[str, object] = {}
    try:
        if message.template == EmailTemplate.CREDENTIALS:
            # Never: credentials are always enqueued for an account (ticket_confirm); failing
            # here is what credentials_issue(account_id=None) did (Account.DoesNotExist).
            if message.account_id is None:
                raise ValueError("credentials message without an account")
            secret_context["temporary_password"] = credentials_issue(
                account_id=message.account_id,
                ticket_id=message.ticket_id,
                attempt=message.attempts,
                recipient=message.recipient,
            )
            fault_point("after_hash_commit")
        elif message.template == EmailTemplate.EMAIL_CHANGE_CONFIRM:
            secret_context["confirm_path"] = _email_change_link(message.context)
        elif message.template == EmailTemplate.EMAIL_CHANGE_PENDING:
            secret_context.update(_email_change_waiting(message.context))
        if message.template in NOT_ME_TEMPLATES and message.account_id is not None:
            token = not_me_link_issue(
                account_id=message.account_id,
                template=message.template,
                sent_to=message.recipient,
            )
            secret_context["not_me_path"] = reverse("not_me", kwargs={"token": token})
        email = build_email(message, secret_context)
        # Last check before the irreversible step: the lease is still this sender's.
        if lease.lost.is_set() or not outbox_lease_renew(message=message):
            logger.warning("outbox message %s: lease lost before the send", message.pk)
            return "lost"
        email.send(fail_silently=False)
    except Exception as exc:
        lease.close()
        # Only the exception's type and SMTP text: never the message body or its context.
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        logger.warning(
            "outbox message %s attempt %s failed: %s", message.pk, message.attempts, error
        )
        permanent = is_permanent(exc) or isinstance(
            exc, (EmailChangeGone, AccountFrozen, AccountClosed, RecipientNotOnFile)
        )
        outbox_mark_failed(message=message, error=error, permanent=permanent)
        return "failed"
    finally:
        secret_context.clear()
    fault_point("after_smtp_accept")
    lease.close()
    if lease.lost.is_set():
        logger.warning("outbox message %s sent after its lease was lost: not marked", message.pk)
        return "lost"
    outbox_mark_sent(message=message)
    fault_point("after_sent_mark")
    logger.info("outbox message %s (%s) sent", message.pk, message.template)
    if message.template == EmailTemplate.CREDENTIALS and message.ticket_id is not None:
        _codes_delivery_observe(ticket_id=message.ticket_id)
    return "sent"


def _codes_delivery_observe(*, ticket_id: int) -> None:
    """The promise as an SLO: confirmation → SMTP accept, one observation per codes e-mail."""
    decided_at = Ticket.objects.filter(pk=ticket_id).values_list("decided_at", flat=True).first()
    if decided_at is not None:
        CODES_DELIVERY_SECONDS.observe(max(0.0, (timezone.now() - decided_at).total_seconds()))
