"""Redis roles: broker, cache and limits each get their own database (or server), Sentinel too."""

from __future__ import annotations

import pytest

from core.redis_urls import kombu_broker, parse_sentinel, role_url


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("broker", "redis://cache.internal:6379/4"),
        ("cache", "redis://cache.internal:6379/5"),
        ("limits", "redis://cache.internal:6379/6"),
    ],
)
def test_each_role_defaults_to_redis_url_with_its_own_database(role: str, expected: str) -> None:
    assert role_url(role, explicit="", base="redis://cache.internal:6379/4") == expected


def test_redis_url_without_a_database_starts_the_roles_at_zero() -> None:
    base = "redis://:secret@cache.internal:6379"
    assert [role_url(r, explicit="", base=base) for r in ("broker", "cache", "limits")] == [
        "redis://:secret@cache.internal:6379/0",
        "redis://:secret@cache.internal:6379/1",
        "redis://:secret@cache.internal:6379/2",
    ]


def test_an_explicit_role_url_wins_over_redis_url() -> None:
    assert role_url("limits", explicit="redis://other:6380/0", base="redis://a/0") == (
        "redis://other:6380/0"
    )


def test_no_redis_url_leaves_every_role_in_process() -> None:
    assert role_url("broker", explicit="", base="") == ""


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    parsed = parse_sentinel("redis+sentinel://:pw@s1:26379,s2:26380/guichet/3")
    assert parsed.sentinels == (("s1", 26379), ("s2", 26380))
    assert (parsed.service, parsed.db, parsed.password) == ("guichet", 3, "pw")


def test_sentinel_roles_keep_the_service_and_change_the_database() -> None:
    base = "redis+sentinel://s1:26379,s2:26379/guichet"
    assert (
        role_url("cache", explicit="", base=base) == "redis+sentinel://s1:26379,s2:26379/guichet/1"
    )
    assert role_url("limits", explicit="", base="sentinel://s1/guichet/4") == (
        "sentinel://s1/guichet/6"
    )


def test_the_broker_gets_kombus_sentinel_spelling_and_master_name() -> None:
    url, options = kombu_broker("redis+sentinel://:pw@s1:26379,s2:26380/guichet/0")
    assert url == "sentinel://:pw@s1:26379/0;sentinel://:pw@s2:26380/0"
    assert options == {"master_name": "guichet", "sentinel_kwargs": {"password": "pw"}}


def test_a_plain_broker_url_is_passed_through() -> None:
    assert kombu_broker("redis://r:6379/0") == ("redis://r:6379/0", {})
