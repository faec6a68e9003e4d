"""What a worker does with one outbox message: claim, (issue codes), send, record."""

from __future__ import annotations

import logging

from django.views.decorators.debug import sensitive_variables

from workflows.emails import build_email
from workflows.models import EmailTemplate
from workflows.services.credentials import credentials_issue
from workflows.services.outbox import outbox_claim, outbox_mark_failed, outbox_mark_sent

logger = logging.getLogger(__name__)


@sensitive_variables("secret_context", "email")
def outbox_deliver(*, message_id: int) -> str:
    """Send one message at least once; a second concurrent or later run is a no-op."""
    message = outbox_claim(message_id=message_id)
    if message is None:
        return "skipped"
    secret_context: dict[str, str] = {}
    try:
        if message.template == EmailTemplate.CREDENTIALS:
            secret_context["temporary_password"] = credentials_issue(
                account_id=message.account_id,
                ticket_id=message.ticket_id,
                attempt=message.attempts,
            )
        email = build_email(message, secret_context)
        email.send(fail_silently=False)
    except Exception as exc:
        # Only the exception's type and SMTP text: never the message body or its context.
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        logger.warning(
            "outbox message %s attempt %s failed: %s", message.pk, message.attempts, error
        )
        outbox_mark_failed(message=message, error=error)
        return "failed"
    finally:
        secret_context.clear()
    outbox_mark_sent(message=message)
    logger.info("outbox message %s (%s) sent", message.pk, message.template)
    return "sent"
