"""axe-core finds no serious or critical violation on any page, in French and English, per role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory, StaffFactory, TicketFactory
from tests.second_factor import ensure_device
from tickets.models import Ticket

LANGUAGES = ["fr", "en"]
BLOCKING = {"serious", "critical"}
# WCAG 2.1 A and AA (what RGAA 4.1 follows) plus axe's best practices, which only report.
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


@dataclass
class World:
    """The people and records the pages show."""

    member: Account
    temporary: Account
    agent: Account
    supervisor: Account
    ticket: Ticket
    awaiting: Ticket  # a risky confirmation the agent asked for (four-eyes)
    newcomer: Account  # staff without an authenticator yet: the enrolment page
    returning: Account  # staff with one, on the password alone: the second-factor step


@pytest.fixture
def world(db: None) -> World:
    member = MemberAccountFactory()
    temporary = MemberAccountFactory(
        member=MemberFactory(first_name="Jean", last_name="Dupont"), must_change_password=True
    )
    # A ticket whose typed name differs from the registry: the desk highlights the difference.
    ticket = TicketFactory(submitted_last_name="Martine", match_result="mismatch")
    agent = StaffFactory(username="alice")
    awaiting = TicketFactory(
        channel="phone",
        state="awaiting_approval",
        approval_requested_by=agent,
        approval_requested_at=timezone.now(),
        approval_reasons=["staff_typed"],
        approval_from_state="pending",
    )
    return World(
        member=member,
        temporary=temporary,
        agent=agent,
        supervisor=StaffFactory(username="sam", groups=["supervisors", "agents"]),
        ticket=ticket,
        awaiting=awaiting,
        newcomer=StaffFactory(username="nina"),
        returning=ensure_device(StaffFactory(username="rob")).user,
    )


# (role, page name, path given the world, expected status)
Page = tuple[str, str, Callable[[World], str], int]
PAGES: list[Page] = [
    ("anonymous", "home", lambda w: "/", 200),
    ("anonymous", "register", lambda w: "/register/", 200),
    ("anonymous", "recover", lambda w: "/recover/", 200),
    ("anonymous", "support", lambda w: "/support/", 200),
    ("anonymous", "help", lambda w: "/help/", 200),
    ("anonymous", "login", lambda w: "/login/", 200),
    ("anonymous", "request-status", lambda w: f"/requests/{w.ticket.reference}/", 200),
    ("anonymous", "not-found", lambda w: "/requests/REG-00000000/", 404),
    ("anonymous", "desk-login", lambda w: "/desk/login/", 200),
    ("member", "account", lambda w: "/account/", 200),
    ("member", "password", lambda w: "/account/password/", 200),
    ("member", "email", lambda w: "/account/email/", 200),
    ("member", "activity", lambda w: "/account/activity/", 200),
    ("member", "help", lambda w: "/help/", 200),
    ("temporary", "forced-password", lambda w: "/account/password/", 200),
    ("agent", "queues", lambda w: "/desk/", 200),
    ("agent", "ticket", lambda w: f"/desk/tickets/{w.ticket.reference}/", 200),
    ("agent", "new-ticket", lambda w: "/desk/tickets/new/", 200),
    ("agent", "members", lambda w: "/desk/members/?q=Martin", 200),
    ("agent", "member", lambda w: f"/desk/members/{w.ticket.member.member_number}/", 200),
    ("supervisor", "overview", lambda w: "/desk/supervisor/", 200),
    ("supervisor", "queue", lambda w: "/desk/supervisor/queue/", 200),
    ("supervisor", "audit", lambda w: "/desk/supervisor/audit/", 200),
    ("supervisor", "staff", lambda w: "/desk/supervisor/staff/", 200),
    ("newcomer", "enrolment", lambda w: "/desk/second-factor/", 200),
    ("returning", "second-factor", lambda w: "/desk/second-factor/", 200),
    ("supervisor", "ticket", lambda w: f"/desk/tickets/{w.ticket.reference}/", 200),
    ("agent", "awaiting-own", lambda w: f"/desk/tickets/{w.awaiting.reference}/", 200),
    ("supervisor", "approval-queue", lambda w: "/desk/?queue=my_approval", 200),
    ("supervisor", "awaiting", lambda w: f"/desk/tickets/{w.awaiting.reference}/", 200),
]

# Forms sent empty, so the error summary and the field errors are checked too.
FORMS_WITH_ERRORS: list[tuple[str, str]] = [
    ("anonymous", "/register/"),
    ("anonymous", "/recover/"),
    ("anonymous", "/support/"),
    ("anonymous", "/login/"),
    ("member", "/account/password/"),
    ("member", "/account/email/"),
    ("anonymous", "/desk/login/"),
    ("newcomer", "/desk/second-factor/"),
    ("returning", "/desk/second-factor/"),
]
PASSWORD_ONLY = ("newcomer", "returning")


def account_for(role: str, world: World) -> Account | None:
    return {
        "anonymous": None,
        "member": world.member,
        "temporary": world.temporary,
        "agent": world.agent,
        "supervisor": world.supervisor,
        "newcomer": world.newcomer,
        "returning": world.returning,
    }[role]


def blocking_violations(page: Any) -> list[str]:
    """axe's serious and critical findings, one readable line each."""
    results = Axe().run(page, options=AXE_OPTIONS).response
    lines = []
    for violation in results["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:3]]
            lines.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} {targets}"
            )
    return lines


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("role", "name", "path", "status"), PAGES, ids=[f"{p[0]}-{p[1]}" for p in PAGES]
)
def test_page_has_no_serious_accessibility_violation(
    new_page: Callable[..., Any],
    world: World,
    role: str,
    name: str,
    path: Callable[[World], str],
    status: int,
    language: str,
) -> None:
    page = new_page(language, account_for(role, world), second_factor=role not in PASSWORD_ONLY)
    response = page.goto(path(world))
    assert response is not None and response.status == status, page.url
    assert page.get_attribute("html", "lang") == language
    assert page.title().strip()
    assert blocking_violations(page) == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("role", "path"), FORMS_WITH_ERRORS, ids=[p for _, p in FORMS_WITH_ERRORS])
def test_a_form_returned_with_errors_has_no_serious_violation(
    new_page: Callable[..., Any], world: World, role: str, path: str, language: str
) -> None:
    page = new_page(language, account_for(role, world), second_factor=role not in PASSWORD_ONLY)
    page.goto(path)
    page.locator("main form button[type=submit], main form button:not([type])").last.click()
    page.wait_for_load_state()
    assert page.locator("[aria-invalid=true], .error-summary, [role=alert]").count() > 0
    assert blocking_violations(page) == []


def test_the_axe_harness_does_report_a_serious_violation(new_page: Callable[..., Any]) -> None:
    """Guard against a silent harness: an unlabelled field and no lang must be caught."""
    page = new_page("en")
    page.set_content("<html><head><title>x</title></head><body><main><input></main></body></html>")
    found = blocking_violations(page)
    assert any(line.startswith("label") for line in found), found
    assert any(line.startswith("html-has-lang") for line in found), found
