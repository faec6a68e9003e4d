"""The help page answers the members' questions, each with a link to the page that acts on it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

# anchor id -> the page its answer must link to
QUESTIONS = {
    "who-may-register": "/register/",
    "member-id": "/register/",
    "why-check": "/support/",
    "codes-delay": "/support/",
    "temporary-password": "/login/",
    "lost-codes": "/recover/",
    "dead-email": "/recover/",
    "change-email": "/account/email/",
    "change-password": "/account/password/",
    "close-account": "/support/",
    "accessibility": "/support/",
}


def sections(html: str) -> dict[str, str]:
    """Each <section> of the page keyed by the id of its heading."""
    found = re.findall(r'<section aria-labelledby="([^"]+)">(.*?)</section>', html, re.S)
    return dict(found)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_it_lists_every_question_with_an_anchor_and_a_link_to_act(
    client: Client, language: str
) -> None:
    response = client.get("/help/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    by_id = sections(html)
    for anchor, target in QUESTIONS.items():
        assert f'href="#{anchor}"' in html, f"the table of contents misses {anchor}"
        assert f'id="{anchor}"' in by_id[anchor]
        assert f'href="{target}"' in by_id[anchor], f"{anchor} does not link to {target}"


def test_it_gives_the_facts_members_need(client: Client) -> None:
    html = client.get("/help/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for fact in (
        "third-party-payment card",
        "cannot open an account of their own",
        "9 letters and 1 digit",
        "Capital and small letters count",
        "24 hours",
        "only the password in the latest one works",
        "within 10 minutes",
        "spam",
    ):
        assert fact in html, fact


def test_every_link_target_on_the_help_page_is_a_page_that_exists(client: Client) -> None:
    html = client.get("/help/").content.decode()
    paths = set(re.findall(r'href="(/[^"#]*)"', html)) - {"/static/css/guichet.css"}
    for path in sorted(paths):
        if path.startswith("/static/") or path.startswith("/i18n/"):
            continue
        status = client.get(path).status_code
        # Member-only pages send visitors to the login page; nothing may be missing.
        assert status in (200, 302), f"{path} answers {status}"


def test_every_page_has_a_skip_link_landmarks_and_a_language_switch(client: Client) -> None:
    for path in ("/", "/register/", "/login/", "/help/", "/requests/REG-00000000/"):
        html = client.get(path).content.decode()
        assert '<a class="skip-link" href="#main">' in html, path
        assert '<main id="main"' in html, path
        assert 'name="language" value="en"' in html, path
        assert "<nav " in html and "<footer" in html, path
