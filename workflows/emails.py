"""Builds member e-mails from three templates each: subject, plain text and HTML."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.views.decorators.debug import sensitive_variables

from workflows.models import OutboxMessage


@sensitive_variables("secret_context", "context")
def build_email(
    message: OutboxMessage, secret_context: dict[str, Any] | None = None
) -> EmailMultiAlternatives:
    """Render one outbox message in its language; `secret_context` lives only in memory."""
    context: dict[str, Any] = {
        "org_name": settings.GUICHET_ORG_NAME,
        "reference": message.ticket.reference if message.ticket is not None else "",
        "ticket": message.ticket,
        "account": message.account,
        **message.context,
        **(secret_context or {}),
    }
    name = message.template
    with translation.override(message.language or settings.LANGUAGE_CODE):
        # A subject is one line: strip any CR/LF a template or value could bring (header injection).
        subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
        text = render_to_string(f"emails/{name}-body.txt", context)
        html = render_to_string(f"emails/{name}-body.html", context)
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        headers={"Auto-Submitted": "auto-generated", "X-Guichet-Message": str(message.pk)},
    )
    email.attach_alternative(html, "text/html")
    return email
