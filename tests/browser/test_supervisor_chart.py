"""The flow chart renders in chromium from server-side SVG, with its table beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client
from django.utils import timezone

from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tests.second_factor import staff_login

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _page_without_javascript(browser: Any, live_server: Any, account: Account) -> Any:
    """A chromium page with JavaScript off, logged in through a session cookie."""
    context = browser.new_context(
        base_url=live_server.url,
        java_script_enabled=False,
        locale="en-GB",
        extra_http_headers={"Accept-Language": "en-GB"},
        viewport={"width": 1280, "height": 900},
    )
    client = Client()
    staff_login(client, account)
    name = settings.SESSION_COOKIE_NAME
    context.add_cookies(
        [{"name": name, "value": client.cookies[name].value, "url": live_server.url}]
    )
    return context.new_page()


def test_the_supervisor_flow_chart_renders_without_javascript(
    browser: Any, live_server: Any
) -> None:
    supervisor: Account = StaffFactory(username="sam", groups=["supervisors", "agents"])
    now = timezone.now()
    for hours in (1, 2, 30, 50, 50, 75):
        TicketFactory(created_at=now - timezone.timedelta(hours=hours))
    TicketFactory(
        state="confirmed",
        created_at=now - timezone.timedelta(hours=3),
        decided_at=now - timezone.timedelta(hours=2),
        decided_by=supervisor,
    )
    page = _page_without_javascript(browser, live_server, supervisor)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/desk/supervisor/")
    chart = page.locator("svg[data-chart='flow']")
    chart.wait_for()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert chart.get_attribute("role") == "img"
    assert page.locator("#flow-title").text_content() == "Requests received and decided per day"
    # 30 days x 2 series; the bars of the days with requests have a height.
    assert page.locator("svg[data-chart='flow'] rect.bar").count() == 60
    heights = [
        float(h) for h in page.locator("rect.bar-received").evaluate_all(
            "bars => bars.map(b => b.getAttribute('height'))"
        )
    ]  # fmt: skip
    assert sum(1 for h in heights if h > 0) >= 2
    assert page.locator("#flow-table tbody tr").count() == 30
    assert chart.locator("script").count() == 0
    assert errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "supervisor-chart.png"), full_page=True)
    assert (ARTIFACTS / "supervisor-chart.png").stat().st_size > 5000
    page.context.close()
