"""Every member e-mail renders as plain text and HTML, in French and English, safely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.test import override_settings

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory, TicketFactory
from tickets.models import Ticket
from workflows.emails import build_email
from workflows.models import EmailTemplate, OutboxMessage

EMAIL_DIR = Path(settings.BASE_DIR) / "workflows" / "templates" / "emails"
TEMPLATES = sorted(p.name.removesuffix("-subject.txt") for p in EMAIL_DIR.glob("*-subject.txt"))
LANGUAGES = ["fr", "en"]
TYPED_NAME = ("<b>Zoë</b>", "& O'Brien")
PASSWORD = "abCdeFgh7k"
# Monospace box: the password alone in a cell styled with a monospace font.
MONO_CELL = re.compile(r"<td[^>]*monospace[^>]*>\s*([^<]+?)\s*</td>")


@pytest.fixture
def account(db: None) -> Account:
    member = MemberFactory(first_name=TYPED_NAME[0], last_name=TYPED_NAME[1])
    return MemberAccountFactory(member=member)


@pytest.fixture
def ticket(account: Account) -> Ticket:
    return TicketFactory(
        member=account.member,
        submitted_first_name=TYPED_NAME[0],
        submitted_last_name=TYPED_NAME[1],
    )


def render(
    template: str, language: str, *, ticket: Ticket | None, account: Account | None
) -> EmailMultiAlternatives:
    message = OutboxMessage(
        ticket=ticket,
        account=account,
        template=template,
        recipient="member@example.org",
        language=language,
    )
    secret = {"temporary_password": PASSWORD} if template == EmailTemplate.CREDENTIALS else {}
    return build_email(message, secret)


def html_of(email: EmailMultiAlternatives) -> str:
    (html, mimetype) = email.alternatives[0]
    assert mimetype == "text/html"
    return str(html)


def test_every_email_kind_has_its_three_templates() -> None:
    for value in EmailTemplate.values:
        for part in ("subject.txt", "body.txt", "body.html"):
            assert (EMAIL_DIR / f"{value}-{part}").is_file(), f"{value}-{part} is missing"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_it_renders_text_and_html_naming_the_reference(
    template: str, language: str, ticket: Ticket, account: Account
) -> None:
    email = render(template, language, ticket=ticket, account=account)
    html = html_of(email)
    assert "\n" not in email.subject
    assert ticket.reference in email.subject
    assert ticket.reference in email.body
    assert ticket.reference in html
    assert f'<html lang="{language}">' in html
    # Plain text is plain: no markup of ours, no template syntax left over.
    assert not re.search(r"</?(p|strong|a|br|table|td)\b", email.body)
    for leftover in ("{%", "{{", "%}", "}}"):
        assert leftover not in email.body
        assert leftover not in html
    # How to reach support, as an absolute link that works from a mail client.
    assert f"{settings.GUICHET_PUBLIC_URL}/support/" in email.body
    assert f'href="{settings.GUICHET_PUBLIC_URL}/support/"' in html


@pytest.mark.parametrize("template", TEMPLATES)
def test_html_has_inline_styles_and_no_remote_resource(
    template: str, ticket: Ticket, account: Account
) -> None:
    html = html_of(render(template, "en", ticket=ticket, account=account))
    assert "<img" not in html.lower()
    assert "<link" not in html.lower()
    assert "<style" not in html.lower()
    assert "<script" not in html.lower()
    assert not re.search(r"""src\s*=\s*["']?https?:""", html, re.IGNORECASE)
    assert "style=" in html


@pytest.mark.parametrize("template", TEMPLATES)
def test_member_typed_text_is_escaped_in_html_and_kept_in_text(
    template: str, ticket: Ticket, account: Account
) -> None:
    email = render(template, "en", ticket=ticket, account=account)
    html = html_of(email)
    assert "<b>Zoë</b>" not in html
    assert "&lt;b&gt;Zoë&lt;/b&gt; &amp; O&#x27;Brien" in html
    assert "<b>Zoë</b> & O'Brien" in email.body


def test_a_request_email_greets_with_the_name_typed_on_the_request(db: None) -> None:
    """Without an account (a rejection), only what the sender typed is echoed, escaped."""
    ticket = TicketFactory(
        member=None, submitted_first_name='"><script>x</script>', submitted_last_name="Doe"
    )
    email = render(EmailTemplate.REJECTION, "en", ticket=ticket, account=None)
    html = html_of(email)
    assert "<script>" not in html
    assert "&quot;&gt;&lt;script&gt;x&lt;/script&gt; Doe" in html
    assert '"><script>x</script> Doe' in email.body


def test_an_email_without_a_ticket_still_renders(account: Account) -> None:
    email = render(EmailTemplate.PASSWORD_CHANGED, "en", ticket=None, account=account)
    assert "Reference" not in email.body
    assert email.subject.startswith(f"[{settings.GUICHET_ORG_NAME}]")
    assert f"{settings.GUICHET_PUBLIC_URL}/recover/" in email.body


@pytest.mark.parametrize("language", LANGUAGES)
def test_credentials_text_puts_member_id_and_password_on_lines_of_their_own(
    language: str, ticket: Ticket, account: Account
) -> None:
    email = render(EmailTemplate.CREDENTIALS, language, ticket=ticket, account=account)
    lines = [line.strip() for line in email.body.splitlines()]
    assert account.username in lines
    assert PASSWORD in lines
    assert PASSWORD not in email.subject
    assert lines.index(account.username) < lines.index(PASSWORD)


@pytest.mark.parametrize("language", LANGUAGES)
def test_credentials_html_shows_the_password_alone_in_a_monospace_box(
    language: str, ticket: Ticket, account: Account
) -> None:
    html = html_of(render(EmailTemplate.CREDENTIALS, language, ticket=ticket, account=account))
    assert PASSWORD in MONO_CELL.findall(html)
    assert account.username in MONO_CELL.findall(html)


def test_credentials_email_warns_about_the_latest_email_and_the_lifetime(
    ticket: Ticket, account: Account
) -> None:
    email = render(EmailTemplate.CREDENTIALS, "en", ticket=ticket, account=account)
    html = html_of(email)
    for part in (email.body, html):
        assert "Only the password in the latest e-mail you received works" in part
        assert "It expires 24 hours after this e-mail was sent" in part
        assert "10 characters (9 letters and 1 digit)" in part
        assert f"{settings.GUICHET_PUBLIC_URL}/login/" in part


def test_credentials_lifetime_follows_the_setting(ticket: Ticket, account: Account) -> None:
    from datetime import timedelta

    with override_settings(GUICHET_TEMP_PASSWORD_TTL=timedelta(hours=48)):
        email = render(EmailTemplate.CREDENTIALS, "en", ticket=ticket, account=account)
    assert "It expires 48 hours after this e-mail was sent" in email.body


def test_acknowledgment_says_what_happens_next(ticket: Ticket) -> None:
    email = render(EmailTemplate.ACKNOWLEDGMENT, "en", ticket=ticket, account=None)
    assert "What happens next" in email.body
    assert "within 10 minutes of the decision" in email.body
    assert "keep it" in email.body


@pytest.mark.parametrize("template", TEMPLATES)
def test_it_writes_in_the_language_of_the_request(
    template: str, ticket: Ticket, account: Account
) -> None:
    """French and English differ (needs the French catalogue, like every page)."""
    french = render(template, "fr", ticket=ticket, account=account)
    english = render(template, "en", ticket=ticket, account=account)
    assert french.subject != english.subject
    assert french.body != english.body
    assert "Bonjour" in french.body
