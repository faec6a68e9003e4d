"""Login brute force: growing delay, lock, per-IP ceiling, trusted proxies (docs/security.md §4)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings

from members import throttling
from members.models import Account
from tests.factories import MemberAccountFactory, MemberFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long member passphrase"
CSRF = re.compile(rb'value="[^"]{20,}"')


class Clock:
    """The limiter's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throttling, "_now", fake)
    return fake


@pytest.fixture
def account(db: None) -> Account:
    return MemberAccountFactory(member=MemberFactory(member_number="720000001"))


def login(username: str, password: str, **extra: Any) -> Any:
    return Client().post("/login/", {"username": username, "password": password}, **extra)


def masked(response: Any, username: str) -> bytes:
    return CSRF.sub(b"", response.content.replace(username.encode(), b"ID"))


def test_locked_wrong_and_unknown_answer_alike(account: Account, clock: Clock) -> None:
    for _ in range(10):
        login("720000001", "wrong password!")
    for _ in range(10):
        login("729999999", "wrong password!")
    locked_right = login("720000001", PASSWORD)  # right password during the lock
    locked_wrong = login("720000001", "wrong password!")
    unknown = login("729999999", "wrong password!")
    fresh_unknown = login("728888888", "wrong password!")
    assert {r.status_code for r in (locked_right, locked_wrong, unknown, fresh_unknown)} == {200}
    bodies = {
        masked(locked_right, "720000001"),
        masked(locked_wrong, "720000001"),
        masked(unknown, "729999999"),
        masked(fresh_unknown, "728888888"),
    }
    assert len(bodies) == 1
    assert "_auth_user_id" not in locked_right.client.session


def test_the_lock_lasts_its_time_then_success_clears_the_counter(
    account: Account, clock: Clock
) -> None:
    for _ in range(10):
        login("720000001", "wrong password!")
    clock.now += 60
    assert login("720000001", PASSWORD).status_code == 200  # still locked
    clock.now += 15 * 60 + 1
    assert login("720000001", PASSWORD).status_code == 302
    # Success cleared the counter: two new failures do not delay the next try.
    login("720000001", "wrong password!")
    login("720000001", "wrong password!")
    assert login("720000001", PASSWORD).status_code == 302


def test_the_delay_grows_with_each_failure(account: Account, clock: Clock) -> None:
    assert [throttling.login_delay_seconds(n) for n in range(11)] == [
        0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 900,
    ]  # fmt: skip
    for _ in range(4):
        login("720000001", "wrong password!")
    assert login("720000001", PASSWORD).status_code == 200  # within the 2 s wait
    clock.now += 5
    assert login("720000001", PASSWORD).status_code == 302


def test_at_most_forty_failures_an_hour_per_account(account: Account, clock: Clock) -> None:
    """Lock at 10 for 15 min: far under ASVS's ceiling of 100 failures per hour."""
    counted = 0
    for _ in range(4):  # four lock periods fill an hour
        for _ in range(30):
            counted += not throttling.login_blocked(
                portal="member", username="720000001", ip="10.1.1.1"
            )
            throttling.login_failure_record(portal="member", username="720000001")
            clock.now += 1
        clock.now += 15 * 60 - 30
    assert counted <= 40


def test_spraying_many_ids_from_one_ip_trips_the_ip_limit(account: Account, clock: Clock) -> None:
    for i in range(50):
        login(f"73{i:07d}", "Summer2024!!")
    # Even the right password of a real, unlocked account is now refused from this IP...
    assert login("720000001", PASSWORD).status_code == 200
    # ...but not from another one.
    assert login("720000001", PASSWORD, REMOTE_ADDR="10.9.9.9").status_code == 302


def test_rotating_x_forwarded_for_from_an_untrusted_hop_changes_nothing(
    account: Account, clock: Clock
) -> None:
    for i in range(50):
        login(f"73{i:07d}", "Summer2024!!", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert login("720000001", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 200


def test_a_success_does_not_clear_the_ip_counter(account: Account, clock: Clock) -> None:
    for i in range(49):
        login(f"73{i:07d}", "Summer2024!!")
    assert login("720000001", PASSWORD).status_code == 302
    login("739999999", "Summer2024!!")
    assert login("720000001", PASSWORD).status_code == 200


@override_settings(GUICHET_LOGIN_FAILURES_PER_IP_PER_HOUR=1000)
def test_every_login_path_computes_one_hash(account: Account, monkeypatch: Any) -> None:
    """Equal work (docs/security.md §2 for login): known, unknown and locked each hash once."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    calls = []
    real = MD5PasswordHasher.encode
    monkeypatch.setattr(
        MD5PasswordHasher, "encode", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    counts = {}
    for name, username in (("known", "720000001"), ("unknown", "729999999")):
        calls.clear()
        login(username, "wrong password!")
        counts[name] = len(calls)
    for _ in range(10):
        login("720000001", "wrong password!")
    calls.clear()
    login("720000001", "wrong password!")
    counts["locked"] = len(calls)
    assert counts == {"known": 1, "unknown": 1, "locked": 1}


@pytest.mark.parametrize(
    ("hops", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        (1, "10.0.0.2", "203.0.113.9", "203.0.113.9"),
        (1, "10.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # client-written entry ignored
        (2, "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.3", "203.0.113.9"),
        (2, "10.0.0.2", "203.0.113.9", "10.0.0.2"),  # shorter than the chain: not trusted
        (1, "10.0.0.2", "not-an-ip", "10.0.0.2"),
        (1, "10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(
    hops: int, remote: str, forwarded: str, expected: str
) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(GUICHET_TRUSTED_PROXY_COUNT=hops):
        assert throttling.client_ip(request) == expected


def test_login_fails_closed_when_the_cache_is_down(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis down")

    monkeypatch.setattr(throttling.cache, "get", broken)
    assert login("720000001", PASSWORD).status_code == 200
