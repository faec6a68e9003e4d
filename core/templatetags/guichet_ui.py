"""Template helpers for the look of member pages and e-mails: accessible widgets, logo, links."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.forms import BoundField
from django.templatetags.static import static
from django.utils.safestring import SafeString
from django.utils.translation import gettext

register = template.Library()

# WCAG 1.3.5 (identify input purpose): browsers and assistive tools fill in or explain these.
# Keyed by field name, since the same names recur across our forms (docs/interfaces.md field names).
AUTOCOMPLETE = {
    "member_number": "username",
    "username": "username",
    "last_name": "family-name",
    "first_name": "given-name",
    "birth_date": "bday",
    "email": "email",
    "new_email": "email",
    "password": "current-password",
    "old_password": "current-password",
    "new_password1": "new-password",
    "new_password2": "new-password",
    # Secrets and identifiers a shared computer must not remember.
    "nir": "off",
    "secret_answer": "off",
}


@register.simple_tag
def render_widget(field: BoundField) -> SafeString:
    """The field's widget with its autocomplete purpose; Django adds aria-invalid/-describedby."""
    attrs: dict[str, str | bool] = {}
    purpose = AUTOCOMPLETE.get(field.name)
    if purpose and "autocomplete" not in field.field.widget.attrs:
        attrs["autocomplete"] = purpose
    return field.as_widget(attrs=attrs)


@register.simple_tag
def logo_url() -> str:
    """The insurer's logo: GUICHET_LOGO_URL when set, else the neutral logo we ship."""
    return getattr(settings, "GUICHET_LOGO_URL", "") or static("img/logo.svg")


@register.simple_tag
def public_url(path: str) -> str:
    """An absolute link for e-mails when GUICHET_PUBLIC_URL is set, else the bare path."""
    base = getattr(settings, "GUICHET_PUBLIC_URL", "").rstrip("/")
    return f"{base}{path}"


@register.simple_tag(takes_context=True)
def email_greeting(context: template.Context) -> str:
    """'Hello Zoë Martin,' with the account's name, else the name typed on the request."""
    account = context.get("account")
    ticket = context.get("ticket")
    # The name typed on this very submission (a repeat request must not echo an earlier one's).
    name = str(context.get("typed_name") or "")
    if not name and account is not None:
        name = f"{account.first_name} {account.last_name}".strip()
    if not name and ticket is not None:
        name = f"{ticket.submitted_first_name} {ticket.submitted_last_name}".strip()
    if name:
        return gettext("Hello %(name)s,") % {"name": name}
    return gettext("Hello,")


@register.simple_tag
def temporary_password_hours() -> int:
    """How long an e-mailed temporary password lives, in whole hours (the TTL setting)."""
    return int(settings.GUICHET_TEMP_PASSWORD_TTL.total_seconds() // 3600)
