"""Browser harness: Debian's chromium driven by Playwright against pytest-django's live server.

Every test under tests/browser is marked `browser`. Chromium is never downloaded: without
/usr/bin/chromium the tests skip with a reason, and fail under CI=true (.ci/run installs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.test import Client

from members.models import Account
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.second_factor import staff_login

BROWSER_DIR = Path(__file__).resolve().parent
LOCALES = {"fr": "fr-FR", "en": "en-GB"}

# Playwright's sync API keeps an event loop in this thread; the ORM calls our fixtures make
# between browser steps are ordinary blocking calls, which Django would otherwise refuse.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/browser as `browser`."""
    for item in items:
        if BROWSER_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def browser_site(transactional_db: None, settings: Any) -> Iterator[None]:
    """Plain-HTTP cookies, in-process tasks and a private cache, whatever REDIS_URL says.

    The live server thread only sees committed rows, so these tests use transactional_db, whose
    flush between tests empties the groups the data migration made: put them back first.
    (Serialized rollback comes out empty once Playwright's sync API has started.)
    """
    _restore_staff_groups()
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SESSION_COOKIE_NAME = "sessionid"
    settings.CSRF_COOKIE_NAME = "csrftoken"
    settings.CACHES = {
        alias: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": alias}
        for alias in ("default", "limits")
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from desk.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    cache.clear()
    caches["limits"].clear()
    yield
    app.conf.task_always_eager = eager


def _restore_staff_groups() -> None:
    from tests.factories import ensure_staff_groups

    ensure_staff_groups()


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh context: new_page(language, account=None, width=1280)."""
    contexts: list[Any] = []

    def open_page(
        language: str = "fr",
        account: Account | None = None,
        width: int = 1280,
        second_factor: bool = True,
    ) -> Any:
        """`second_factor=False`: a staff session on its password alone (the step's pages)."""
        context = browser.new_context(
            base_url=live_server.url,
            locale=LOCALES[language],
            extra_http_headers={"Accept-Language": LOCALES[language]},
            viewport={"width": width, "height": 900},
        )
        contexts.append(context)
        if account is not None:
            client = Client()
            if second_factor:
                staff_login(client, account)  # members are simply logged in
            else:
                client.force_login(account)
            cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [
                    {
                        "name": django_settings.SESSION_COOKIE_NAME,
                        "value": cookie,
                        "url": live_server.url,
                    }
                ]
            )
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
