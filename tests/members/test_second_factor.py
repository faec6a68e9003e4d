"""docs/security.md §40-41: the staff second factor (TOTP) and step-up.

Enrolment on first login, wrong codes, replay, clock drift, the login throttle's lock, single-use
backup codes, a supervisor's reset (audit row and e-mail), the middleware that keeps every staff
page shut on the password alone, step-up expiry that carries the action on with its data, and
the key never in clear in the database nor in the logs. (Every URL x {no session, password only,
password + second factor}: tests/security/test_role_matrix.py.)
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from members import second_factor
from members.models import (
    Account,
    BackupCode,
    Member,
    SecondFactorEvent,
    SecondFactorEventKind,
    StaffTOTPDevice,
)
from members.second_factor import (
    VERIFIED_AT_SESSION_KEY,
    current_code,
    device_key,
    secret_from_b32,
)
from tests.factories import MemberFactory, StaffFactory, TicketFactory
from tests.requests import intake_request
from tests.second_factor import TEST_TOTP_SECRET, ensure_device, staff_login, verify_session
from tickets.models import Ticket, TicketState
from workflows.models import EmailTemplate, OutboxMessage

pytestmark = pytest.mark.django_db

PASSWORD = "staff password 123"
STEP = "/desk/second-factor/"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


class Clock:
    """The second factor's clock, moved by hand (30 s per step)."""

    def __init__(self) -> None:
        self.now = (time.time() // 30) * 30 + 5  # early in a step

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(second_factor, "_now", fake)
    return fake


@pytest.fixture
def carol(db: None) -> Account:
    return StaffFactory(username="carol", email="carol@staff.example")


def code_at(at: float, secret: str = TEST_TOTP_SECRET) -> str:
    return current_code(secret_from_b32(secret), at=at)


def password_step(client: Client, username: str = "carol") -> None:
    response = client.post("/desk/login/", {"username": username, "password": PASSWORD})
    assert response["Location"].startswith(STEP), response["Location"]


def is_verified(client: Client) -> bool:
    return client.get("/desk/").status_code == 200


# --- enrolment -----------------------------------------------------------------------------------


def test_the_first_login_enrols_with_a_local_qr_code_and_a_key_shown_once(
    client: Client, carol: Account, clock: Clock
) -> None:
    password_step(client)
    page = client.get(STEP).content.decode()
    # The QR code is drawn in the page (inline SVG): no image fetched from a remote service.
    assert re.search(r'<figure class="qr"><svg[^>]*>.*?</svg>', page, re.S)
    assert not re.search(r"<img[^>]+src=\"https?:", page)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)  # type: ignore[union-attr]
    assert not is_verified(client)

    response = client.post(STEP, {"otp_token": code_at(clock.now, secret)})
    assert response.status_code == 200
    codes = re.findall(
        r"<li><code>([a-z2-9]{4}-[a-z2-9]{4})</code></li>", response.content.decode()
    )
    assert len(codes) == 10 and len(set(codes)) == 10
    assert is_verified(client)
    assert StaffTOTPDevice.objects.get(user=carol).confirmed
    assert SecondFactorEvent.objects.filter(account=carol, kind="enrolled").exists()

    # The next login asks for a code: the key is never shown again.
    client.post("/desk/logout/")
    password_step(client)
    page = client.get(STEP).content.decode()
    assert secret not in page and 'name="otp_token"' in page and "<svg" not in page


def test_a_mistyped_first_code_keeps_the_same_key_and_turns_nothing_on(
    client: Client, carol: Account, clock: Clock
) -> None:
    password_step(client)
    page = client.get(STEP).content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)  # type: ignore[union-attr]
    wrong = f"{(int(code_at(clock.now, secret)) + 1) % 1000000:06d}"
    again = client.post(STEP, {"otp_token": wrong}).content.decode()
    assert secret in again and "not valid" in again
    assert not StaffTOTPDevice.objects.get(user=carol).confirmed
    assert not is_verified(client)


# --- codes: wrong, replay, drift, lock -----------------------------------------------------------


def test_a_wrong_code_is_refused_and_recorded(client: Client, carol: Account, clock: Clock) -> None:
    ensure_device(carol)
    password_step(client)
    right = code_at(clock.now)
    response = client.post(STEP, {"otp_token": f"{(int(right) + 1) % 1000000:06d}"})
    assert response.status_code == 200 and "not valid" in response.content.decode()
    assert not is_verified(client)
    assert SecondFactorEvent.objects.filter(account=carol, kind="failed").count() == 1


def test_a_code_once_used_is_refused_again(carol: Account, clock: Clock) -> None:
    ensure_device(carol)
    code = code_at(clock.now)
    first, second = Client(), Client()
    password_step(first)
    assert first.post(STEP, {"otp_token": code})["Location"] == "/desk/"
    password_step(second)
    response = second.post(STEP, {"otp_token": code})
    assert response.status_code == 200 and not is_verified(second)
    # Nor is the previous step's code, once a later one was accepted.
    assert second.post(STEP, {"otp_token": code_at(clock.now - 30)}).status_code == 200
    assert not is_verified(second)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-30, True), (30, True), (-60, False), (60, False)]
)
def test_one_step_of_clock_drift_either_way_is_allowed(
    client: Client, carol: Account, clock: Clock, offset: int, accepted: bool
) -> None:
    ensure_device(carol)
    password_step(client)
    client.post(STEP, {"otp_token": code_at(clock.now + offset)})
    assert is_verified(client) is accepted


def test_wrong_codes_lock_the_step_like_passwords(
    client: Client, carol: Account, clock: Clock, settings: Any
) -> None:
    settings.GUICHET_LOGIN_FAILURES_BEFORE_LOCK = 4
    ensure_device(carol)
    password_step(client)
    right = code_at(clock.now)
    wrong = f"{(int(right) + 7) % 1000000:06d}"
    for _ in range(4):
        client.post(STEP, {"otp_token": wrong})
    response = client.post(STEP, {"otp_token": right})
    assert "Too many wrong codes" in response.content.decode()
    assert not is_verified(client)
    assert SecondFactorEvent.objects.filter(account=carol, kind="locked").count() == 1
    # The lock did not use the right code up: it works once the lock is over.
    from members import throttling

    later = time.time() + settings.GUICHET_LOGIN_LOCK_SECONDS + 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(throttling, "_now", lambda: later)
        assert client.post(STEP, {"otp_token": right})["Location"] == "/desk/"


# --- backup codes --------------------------------------------------------------------------------


def test_a_backup_code_works_once_and_is_kept_hashed(carol: Account, clock: Clock) -> None:
    ensure_device(carol)
    codes = second_factor.backup_codes_issue(account=carol)
    stored = set(BackupCode.objects.filter(account=carol).values_list("digest", flat=True))
    assert len(stored) == 10
    assert stored.isdisjoint(set(codes) | {c.replace("-", "") for c in codes})
    first, second = Client(), Client()
    password_step(first)
    assert first.post(STEP, {"otp_token": codes[3].upper()})["Location"] == "/desk/"
    password_step(second)
    second.post(STEP, {"otp_token": codes[3]})
    assert not is_verified(second)
    assert SecondFactorEvent.objects.filter(account=carol, kind="backup_used").count() == 1


# --- the middleware ------------------------------------------------------------------------------


def test_the_password_alone_opens_no_staff_page_and_no_post(carol: Account) -> None:
    ticket = TicketFactory()
    carol.is_superuser = True
    carol.save()
    client = Client()
    password_step(client)
    for path in ("/desk/", f"/desk/tickets/{ticket.reference}/", "/desk/supervisor/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"{STEP}?next={path.replace('/', '%2F')}", path
    response = client.post(f"/desk/tickets/{ticket.reference}/claim/")
    assert response.status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None


# --- step-up -------------------------------------------------------------------------------------


@pytest.fixture
def member() -> Member:
    return MemberFactory(member_number="400000077")


def test_an_old_second_factor_asks_again_then_confirms_with_the_comment_kept(
    carol: Account, member: Member, settings: Any
) -> None:
    ticket = intake_request(member)
    client = Client()
    client.force_login(carol)
    verify_session(client, carol, verified_at=time.time() - settings.GUICHET_STEP_UP_SECONDS - 5)
    assert client.get("/desk/").status_code == 200  # pages still open: only sensitive actions ask
    action = f"/desk/tickets/{ticket.reference}/confirm/"
    prompt = client.post(action, {"comment": "checked on the phone <b>"})
    assert prompt.status_code == 200
    page = prompt.content.decode()
    assert 'name="otp_token"' in page
    assert '<input type="hidden" name="comment" value="checked on the phone &lt;b&gt;">' in page
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING

    response = client.post(
        action, {"comment": "checked on the phone <b>", "otp_token": code_at(time.time())}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == TicketState.CONFIRMED
    assert ticket.events.filter(body="checked on the phone <b>").exists()
    assert SecondFactorEvent.objects.filter(account=carol, kind="step_up").exists()
    # Fresh now: the next sensitive action goes ahead without asking.
    assert time.time() - client.session[VERIFIED_AT_SESSION_KEY] < 5


def test_a_wrong_step_up_code_does_nothing(carol: Account, member: Member, settings: Any) -> None:
    ticket = intake_request(member)
    client = Client()
    client.force_login(carol)
    verify_session(client, carol, verified_at=time.time() - settings.GUICHET_STEP_UP_SECONDS - 5)
    right = code_at(time.time())
    response = client.post(
        f"/desk/tickets/{ticket.reference}/confirm/",
        {"otp_token": f"{(int(right) + 1) % 1000000:06d}"},
    )
    assert response.status_code == 200 and "not valid" in response.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PENDING


def test_a_bulk_reassignment_asks_again_and_keeps_every_ticked_ticket(
    supervisor: Account, agent: Account, settings: Any
) -> None:
    tickets = [TicketFactory() for _ in range(3)]
    client = Client()
    client.force_login(supervisor)
    verify_session(
        client, supervisor, verified_at=time.time() - settings.GUICHET_STEP_UP_SECONDS - 5
    )
    data = {
        "reference": [t.reference for t in tickets],
        "assignee": agent.username,
        "scope": "selected",
    }
    prompt = client.post("/desk/supervisor/reassign/", data)
    assert prompt.status_code == 200
    for ticket in tickets:
        assert f'name="reference" value="{ticket.reference}"' in prompt.content.decode()
    assert not Ticket.objects.filter(assignee=agent).exists()
    client.post("/desk/supervisor/reassign/", {**data, "otp_token": code_at(time.time())})
    assert Ticket.objects.filter(assignee=agent).count() == 3


@pytest.mark.parametrize("action", ["confirm", "reissue-codes"])
def test_every_action_that_sends_codes_asks_for_a_fresh_code(
    carol: Account, settings: Any, action: str
) -> None:
    ticket = TicketFactory()
    events = ticket.events.count()
    client = Client()
    client.force_login(carol)
    verify_session(client, carol, verified_at=time.time() - settings.GUICHET_STEP_UP_SECONDS - 5)
    prompt = client.post(f"/desk/tickets/{ticket.reference}/{action}/")
    assert prompt.status_code == 200 and 'name="otp_token"' in prompt.content.decode()
    assert ticket.events.count() == events and not OutboxMessage.objects.exists()


def test_claiming_needs_no_step_up(carol: Account, settings: Any) -> None:
    ticket = TicketFactory()
    client = Client()
    client.force_login(carol)
    verify_session(client, carol, verified_at=time.time() - settings.GUICHET_STEP_UP_SECONDS - 5)
    assert client.post(f"/desk/tickets/{ticket.reference}/claim/").status_code == 302
    assert Ticket.objects.get(pk=ticket.pk).assignee_id == carol.pk


# --- a supervisor resets a colleague's device ----------------------------------------------------


def test_a_supervisor_resets_a_colleagues_device_recorded_and_emailed(
    supervisor_client: Client, supervisor: Account, carol: Account, clock: Clock
) -> None:
    ensure_device(carol)
    second_factor.backup_codes_issue(account=carol)
    assert carol.username in supervisor_client.get("/desk/supervisor/staff/").content.decode()
    response = supervisor_client.post(f"/desk/supervisor/staff/{carol.pk}/reset-second-factor/")
    assert response.status_code == 302
    assert not StaffTOTPDevice.objects.filter(user=carol).exists()
    assert not BackupCode.objects.filter(account=carol).exists()
    event = SecondFactorEvent.objects.get(account=carol, kind=SecondFactorEventKind.RESET)
    assert event.actor_id == supervisor.pk
    mail = OutboxMessage.objects.get(template=EmailTemplate.SECOND_FACTOR_RESET)
    assert mail.recipient == "carol@staff.example" and mail.account_id == carol.pk
    # Carol's next login enrols a new authenticator.
    client = Client()
    password_step(client)
    assert '<code class="secret">' in client.get(STEP).content.decode()


def test_agents_cannot_reset_devices_nor_supervisors_their_own(
    agent_client: Client, supervisor_client: Client, supervisor: Account, carol: Account
) -> None:
    ensure_device(carol)
    assert (
        agent_client.post(f"/desk/supervisor/staff/{carol.pk}/reset-second-factor/").status_code
        == 403
    )
    supervisor_client.post(f"/desk/supervisor/staff/{supervisor.pk}/reset-second-factor/")
    assert StaffTOTPDevice.objects.filter(user__in=[carol, supervisor]).count() == 2
    assert not SecondFactorEvent.objects.filter(kind="reset").exists()


def test_a_device_reset_needs_a_fresh_second_factor(
    supervisor: Account, carol: Account, settings: Any
) -> None:
    ensure_device(carol)
    client = Client()
    client.force_login(supervisor)
    verify_session(
        client, supervisor, verified_at=time.time() - settings.GUICHET_STEP_UP_SECONDS - 5
    )
    prompt = client.post(f"/desk/supervisor/staff/{carol.pk}/reset-second-factor/")
    assert prompt.status_code == 200 and 'name="otp_token"' in prompt.content.decode()
    assert StaffTOTPDevice.objects.filter(user=carol).exists()


# --- the key at rest and in the logs -------------------------------------------------------------


def _database_text() -> str:
    """Every text column of every table, as one string."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            chunks.extend(str(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_the_key_is_in_clear_neither_in_the_database_nor_in_the_logs(
    client: Client, carol: Account, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        password_step(client)
        page = client.get(STEP).content.decode()
        secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)  # type: ignore[union-attr]
        code = code_at(clock.now, secret)
        client.post(STEP, {"otp_token": code})
    raw = secret_from_b32(secret)
    device = StaffTOTPDevice.objects.get(user=carol)
    assert device_key(device) == raw  # readable with the encryption key only
    dump = _database_text()
    for needle in (secret, secret.lower(), raw.hex(), raw.hex().upper()):
        assert needle not in dump
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in logs and raw.hex() not in logs and code not in logs


# --- the demo ------------------------------------------------------------------------------------


def test_seed_demo_refuses_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("demo_totp", stdout=io.StringIO())
    assert not Account.objects.exists()


def test_seed_demo_gives_the_demo_staff_the_given_key_and_demo_totp_its_code(
    settings: Any, client: Client
) -> None:
    settings.DEBUG = True
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    call_command("seed_demo", "--totp-secret", secret, stdout=io.StringIO())
    for username in ("agent", "supervisor"):
        device = StaffTOTPDevice.objects.get(user__username=username, confirmed=True)
        assert device_key(device) == secret_from_b32(secret)
    out = io.StringIO()
    call_command("demo_totp", "--secret", secret, stdout=out)
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    client.post("/desk/login/", {"username": "agent", "password": "guichet-demo"})
    assert client.post(STEP, {"otp_token": code})["Location"] == "/desk/"


def test_the_test_helper_logs_staff_in_past_the_second_factor(agent: Account) -> None:
    assert is_verified(staff_login(Client(), agent))
    plain = Client()
    plain.force_login(agent)
    assert not is_verified(plain)


def test_a_malformed_encryption_key_fails_the_system_check(settings: Any) -> None:
    from core.checks import otp_key_is_usable

    settings.GUICHET_OTP_ENCRYPTION_KEY = "change-me-to-a-fernet-key"
    assert [error.id for error in otp_key_is_usable()] == ["guichet.E007"]
    settings.GUICHET_OTP_ENCRYPTION_KEY = "A" * 43 + "="
    assert otp_key_is_usable() == []


def test_a_dedicated_encryption_key_is_used_when_set(carol: Account, settings: Any) -> None:
    from cryptography.fernet import Fernet

    settings.GUICHET_OTP_ENCRYPTION_KEY = Fernet.generate_key().decode()
    device = ensure_device(carol)
    assert Fernet(settings.GUICHET_OTP_ENCRYPTION_KEY.encode()).decrypt(
        device.encrypted_key.encode()
    ) == secret_from_b32(TEST_TOTP_SECRET)


def test_the_admin_shows_neither_the_encrypted_key_nor_backup_code_digests(carol: Account) -> None:
    root = StaffFactory(username="root", is_superuser=True)
    client = staff_login(Client(), root)
    device = ensure_device(carol)
    second_factor.backup_codes_issue(account=carol)
    digest = BackupCode.objects.filter(account=carol).values_list("digest", flat=True)[0]
    pages = [
        f"/admin/members/stafftotpdevice/{device.pk}/change/",
        "/admin/members/stafftotpdevice/",
        "/admin/members/backupcode/",
        f"/admin/members/backupcode/{BackupCode.objects.filter(account=carol)[0].pk}/change/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        assert device.encrypted_key not in body and digest not in body, path
