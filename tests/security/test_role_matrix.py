"""docs/security.md §26-28, §40: every URL x role x method against one declared table; CSRF on
POSTs. Staff roles come twice: past the second factor, and on the password alone.

A URL missing from URL_TABLE fails `test_every_url_is_declared`: declare what each role may do.
Answers: "ok" 2xx; "redirect" 3xx inside the site; "login" 3xx to a login page; "second_factor"
3xx to the second-factor step; "denied" 403; "absent" 404; "method" 405.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client

from core.health import HEARTBEAT_KEY
from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tests.second_factor import staff_login
from tests.security.urlmap import concrete_path, url_patterns
from tickets.models import Ticket, TicketEvent
from workflows.models import OutboxMessage

ROLES = (
    "anonymous",
    "member",
    "other_member",
    "agent",
    "supervisor",
    "deactivated_staff",
    "agent_password_only",
    "supervisor_password_only",
    "superuser_password_only",
)
# Staff logged in on their password alone: no desk, supervisor or admin page, no POST (§40).
PASSWORD_ONLY_ROLES = ("agent_password_only", "supervisor_password_only", "superuser_password_only")
STEP = ("second_factor", "denied")
Row = dict[str, tuple[str, str]]


def same(get: str, post: str) -> Row:
    return dict.fromkeys(ROLES, (get, post))


def roles(
    *,
    anonymous: tuple[str, str],
    members: tuple[str, str],
    agent: tuple[str, str],
    supervisor: tuple[str, str],
    password_only: tuple[str, str] = STEP,
) -> Row:
    """Deactivated staff are anonymous to the site: their session no longer authenticates."""
    return {
        "anonymous": anonymous,
        "member": members,
        "other_member": members,
        "agent": agent,
        "supervisor": supervisor,
        "deactivated_staff": anonymous,
        **dict.fromkeys(PASSWORD_ONLY_ROLES, password_only),
    }


PUBLIC_PAGE = same("ok", "method")
PUBLIC_FORM = same("ok", "ok")  # an empty POST shows the form again with field errors
MEMBER_PAGE = roles(
    anonymous=("login", "login"),
    members=("ok", "ok"),
    agent=("denied", "denied"),
    supervisor=("denied", "denied"),
    password_only=("denied", "denied"),
)
MEMBER_READ_PAGE = roles(
    anonymous=("login", "login"),
    members=("ok", "method"),
    agent=("denied", "method"),
    supervisor=("denied", "method"),
    password_only=("denied", "method"),
)
# A member's own POST-only action (cancel the waiting e-mail change): staff are refused.
MEMBER_ACTION = roles(
    anonymous=("login", "login"),
    members=("method", "redirect"),
    agent=("method", "denied"),
    supervisor=("method", "denied"),
    password_only=("method", "denied"),
)
DESK_PAGE = roles(
    anonymous=("login", "login"),
    members=("denied", "denied"),
    agent=("ok", "method"),
    supervisor=("ok", "method"),
)
DESK_FORM = roles(
    anonymous=("login", "login"),
    members=("denied", "denied"),
    agent=("ok", "ok"),
    supervisor=("ok", "ok"),
)
DESK_ACTION = roles(
    anonymous=("login", "login"),
    members=("denied", "denied"),
    agent=("method", "redirect"),
    supervisor=("method", "redirect"),
)
SUPERVISOR_PAGE = roles(
    anonymous=("login", "login"),
    members=("denied", "denied"),
    agent=("denied", "denied"),
    supervisor=("ok", "method"),
)
SUPERVISOR_ACTION = roles(
    anonymous=("login", "login"),
    members=("denied", "denied"),
    agent=("denied", "denied"),
    supervisor=("method", "redirect"),
)
SECOND_FACTOR_STEP = roles(
    anonymous=("login", "login"),
    members=("login", "login"),
    agent=("ok", "ok"),  # an empty POST shows the form again
    supervisor=("ok", "ok"),
    password_only=("ok", "ok"),
)
# Superusers only: verified staff who are not are sent to the admin's login.
ADMIN = roles(
    anonymous=("login", "login"),
    members=("login", "login"),
    agent=("login", "login"),
    supervisor=("login", "login"),
)
# The API never reads a session: every role is a caller without a token, refused before the
# method is even looked at (401, "unauthenticated").
API = same("unauthenticated", "unauthenticated")

URL_TABLE: dict[str, Row] = {
    "home": PUBLIC_PAGE,
    "register": PUBLIC_FORM,
    "recover": PUBLIC_FORM,
    "support": PUBLIC_FORM,
    "request_status": PUBLIC_PAGE,
    "help": PUBLIC_PAGE,
    "healthz": PUBLIC_PAGE,
    "livez": PUBLIC_PAGE,
    "readyz": PUBLIC_PAGE,
    "metrics": PUBLIC_PAGE,  # from loopback (the test client); tests/supervision/test_metrics.py
    "login": PUBLIC_FORM,
    "logout": same("method", "redirect"),
    "account": MEMBER_PAGE,
    "account_activity": MEMBER_READ_PAGE,
    "password_change": MEMBER_PAGE,
    "email_change": MEMBER_PAGE,
    "email_change_cancel": MEMBER_ACTION,
    "email_change_confirm": same("absent", "absent"),  # with an unknown token
    "not_me": same("absent", "absent"),  # with an unknown token
    "desk_login": PUBLIC_FORM,
    "desk_second_factor": SECOND_FACTOR_STEP,
    "desk_logout": same("method", "login"),
    "desk_queue": DESK_PAGE,
    "desk_ticket_new": DESK_FORM,
    "desk_members": DESK_PAGE,
    "desk_member": DESK_PAGE,
    "desk_ticket": DESK_PAGE,
    "desk_ticket_action": DESK_ACTION,
    "desk_ticket_reveal": DESK_ACTION,
    "desk_member_reveal": DESK_ACTION,
    "supervision": SUPERVISOR_PAGE,
    "supervision_queue": SUPERVISOR_PAGE,
    "supervision_reassign": SUPERVISOR_ACTION,
    "supervision_release_stale": SUPERVISOR_ACTION,
    "supervision_audit": SUPERVISOR_PAGE,
    "supervision_export_queue": SUPERVISOR_PAGE,
    "supervision_export_audit": SUPERVISOR_PAGE,
    "supervision_export_access_journal": SUPERVISOR_PAGE,
    "supervision_staff": SUPERVISOR_PAGE,
    # A reset of an unknown account (the path's id) answers 404 once past role and step-up.
    "supervision_second_factor_reset": roles(
        anonymous=("login", "login"),
        members=("denied", "denied"),
        agent=("denied", "denied"),
        supervisor=("method", "absent"),
    ),
    "set_language": same("redirect", "redirect"),
    "admin:login": roles(
        anonymous=("ok", "ok"), members=("ok", "ok"), agent=("ok", "ok"), supervisor=("ok", "ok")
    ),
    "admin:logout": roles(
        anonymous=("redirect", "redirect"),
        members=("redirect", "redirect"),
        agent=("redirect", "redirect"),
        supervisor=("redirect", "redirect"),
    ),
    "api:schema": PUBLIC_PAGE,
    "api:docs": PUBLIC_PAGE,
    "api:token": same("method", "unsupported"),  # a form body is needed, not multipart
    "api:submit_registration": API,
    "api:submit_recovery": API,
    "api:submit_email_change": API,
    "api:submit_closure": API,
    "api:submit_access_problem": API,
    "api:request_status": API,
    "api:events": API,
    "api:registry_members": API,
    "api:webhooks": API,
    "api:webhook": API,
    "api:webhook_deliveries": API,
    "api:not_found": same("absent", "absent"),
}


def declared(key: str, path: str) -> Row | None:
    """The row for a URL; every admin page other than login/logout is for superusers only."""
    if key in URL_TABLE:
        return URL_TABLE[key]
    if path.startswith("/admin/"):
        return ADMIN
    return None


def classify(response: HttpResponse) -> str:
    status = response.status_code
    if 200 <= status < 300:
        return "ok"
    if 300 <= status < 400:
        location = response.get("Location", "")
        if location.split("?")[0] == "/desk/second-factor/":
            return "second_factor"
        return "login" if "login/" in location.split("?")[0] else "redirect"
    return {
        401: "unauthenticated",
        403: "denied",
        404: "absent",
        405: "method",
        415: "unsupported",
    }.get(status, str(status))


def _state() -> tuple[int, ...]:
    return (
        Ticket.objects.count(),
        TicketEvent.objects.count(),
        OutboxMessage.objects.count(),
        Account.objects.count(),
        Ticket.objects.exclude(assignee=None).count(),
        Ticket.objects.filter(state="pending").count(),
    )


@pytest.fixture
def personas(
    member_account: Account, stranger: Account, agent: Account, supervisor: Account
) -> dict[str, Account | None]:
    return {
        "anonymous": None,
        "member": member_account,
        "other_member": stranger,
        "agent": agent,
        "supervisor": supervisor,
        "deactivated_staff": StaffFactory(username="gone", is_active=False),
        "agent_password_only": StaffFactory(username="alice-password-only"),
        "supervisor_password_only": StaffFactory(
            username="sam-password-only", groups=["supervisors", "agents"]
        ),
        "superuser_password_only": StaffFactory(username="root-password-only", is_superuser=True),
    }


def _path_for(pattern: str) -> str:
    return _path_and_ticket(pattern)[0]


def _path_and_ticket(pattern: str) -> tuple[str, Ticket]:
    ticket = TicketFactory(submitted_email="private-address@example.org")
    return concrete_path(
        pattern,
        {
            "reference": ticket.reference,
            "action": "note",
            "member_number": ticket.member.member_number,
            "token": "abcdefghijklmnop",
            "account_id": "999999999",
            "*": "1",
        },
    ), ticket


def _body(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")  # type: ignore[attr-defined]
    return response.content.decode(errors="replace")


def _client(user: Account | None, **kwargs: Any) -> Client:
    client = Client(raise_request_exception=False, **kwargs)
    if user is not None and user.username.endswith("-password-only"):
        client.force_login(user)  # the password step only
    elif user is not None:
        staff_login(client, user)  # members are simply logged in; staff past the second factor
    return client


@pytest.mark.django_db
def test_every_url_is_declared() -> None:
    missing = [
        key
        for pattern, key in url_patterns()
        if declared(key, concrete_path(pattern, {"*": "1"})) is None
    ]
    assert not missing, f"declare these URLs in URL_TABLE: {missing}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_each_role_as_declared(
    role: str, personas: dict[str, Account | None]
) -> None:
    user = personas[role]
    wrong: list[str] = []
    # /healthz reports a worker's heartbeat when REDIS_URL is set (as in CI): give it one, so the
    # table speaks of access rules, not of whether a worker happens to run.
    cache.set(HEARTBEAT_KEY, time.time(), timeout=600)
    for pattern, key in url_patterns():
        row = declared(key, concrete_path(pattern, {"*": "1"}))
        if row is None:
            continue
        for method, expected in zip(("get", "post"), row[role], strict=True):
            path, ticket = _path_and_ticket(pattern)
            before = _state()
            response = getattr(_client(user), method)(path, {})
            got = classify(response)
            if got != expected:
                wrong.append(f"{method.upper()} {path} ({key}): {got}, declared {expected}")
            if got in ("denied", "login", "absent", "method") and _state() != before:
                wrong.append(f"{method.upper()} {path} ({key}): refused but state changed")
            private = [
                value
                for value in (ticket.submitted_email, ticket.member.member_number)
                if value not in path  # the language switcher echoes the requested path
            ]
            if got == "denied" and any(value in _body(response) for value in private):
                wrong.append(f"{method.upper()} {path} ({key}): refusal shows ticket data")
    assert not wrong, "\n".join(wrong)


# --- CSRF (docs/security.md §28) ------------------------------------------------------------------


def _post_targets(personas: dict[str, Account | None]) -> list[tuple[str, str, Account | None]]:
    """Every (key, pattern, user) where some role's POST is accepted (not 405, not refused)."""
    targets = []
    for pattern, key in url_patterns():
        row = declared(key, concrete_path(pattern, {"*": "1"}))
        if row is None:
            continue
        for role in ROLES:
            if row[role][1] in ("ok", "redirect") or (key == "desk_logout" and role == "agent"):
                targets.append((key, pattern, personas[role]))
                break
    return targets


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["none", "foreign"])
def test_no_post_changes_anything_without_the_sessions_csrf_token(
    token: str, personas: dict[str, Account | None]
) -> None:
    foreign = Client()
    foreign.get("/register/")
    foreign_token = foreign.cookies["__Host-csrftoken"].value
    wrong = []
    for key, pattern, user in _post_targets(personas):
        path = _path_for(pattern)
        client = _client(user, enforce_csrf_checks=True)
        client.get("/register/")  # the victim's own CSRF cookie exists
        sessions = Session.objects.count()
        before = _state()
        data: dict[str, str] = {"reason": "duplicate", "body": "x", "language": "en"}
        if token == "foreign":
            data["csrfmiddlewaretoken"] = foreign_token
        response = client.post(path, data, HTTP_ORIGIN="https://evil.example")
        if response.status_code != 403:
            wrong.append(f"POST {path} ({key}): {response.status_code}")
        if _state() != before or Session.objects.count() > sessions:
            wrong.append(f"POST {path} ({key}): state changed")
    assert not wrong, "\n".join(wrong)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "action",
    [
        "claim",
        "release",
        "confirm",
        "reject",
        "flag-mismatch",
        "note",
        "reissue-codes",
        "approve",
        "send-back",
    ],
)
def test_desk_actions_refuse_get(action: str, agent_client: Client) -> None:
    ticket = TicketFactory()
    before = _state()
    response = agent_client.get(f"/desk/tickets/{ticket.reference}/{action}/?reason=duplicate")
    assert response.status_code == 405
    assert _state() == before


@pytest.mark.django_db
def test_logout_by_get_keeps_the_session(member_client: Client) -> None:
    check: Callable[[], int] = lambda: member_client.get("/account/").status_code  # noqa: E731
    assert member_client.get("/logout/").status_code == 405
    assert check() == 200
