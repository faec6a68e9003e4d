"""Redis roles (broker, cache, limits): their URLs, Sentinel included, and clients built from them.

Plain functions with no Django import: `desk.settings` calls them while it is being read.

One Redis can serve the three roles, each in its own database number (docs/operations.md,
"Redis roles"): a cache flush then never drops a queued task. A Sentinel URL names the sentinels,
the master's service name and the database::

    redis+sentinel://[:password@]host1:26379[,host2:26379…]/<service-name>[/<db>]

`sentinel://` is accepted as the same syntax. The password is the master's (and the sentinels'
when they ask for one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

SENTINEL_SCHEMES = ("redis+sentinel", "sentinel")

# Database offsets from REDIS_URL's own database (0 by default): broker 0, cache 1, limits 2.
ROLE_DB_OFFSET = {"broker": 0, "cache": 1, "limits": 2}


@dataclass(frozen=True)
class SentinelURL:
    """A parsed `redis+sentinel://` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel(url: str) -> SentinelURL:
    """Split a Sentinel URL into its sentinels, service name, database and credentials."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if userinfo:
        user, sep, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    sentinels: list[tuple[str, int]] = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
        sentinels.append((name.strip("[]"), int(port or 26379)))
    segments = [s for s in parts.path.split("/") if s]
    if not sentinels or not segments:
        raise ValueError("a Sentinel URL needs at least one host and the master's service name")
    db = int(segments[1]) if len(segments) > 1 else 0
    return SentinelURL(tuple(sentinels), unquote(segments[0]), db, username, password)


def _db_of(url: str) -> int:
    if is_sentinel(url):
        return parse_sentinel(url).db
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def with_db(url: str, db: int) -> str:
    """The same server with another database number."""
    parts = urlsplit(url)
    if is_sentinel(url):
        service = next(s for s in parts.path.split("/") if s)
        return urlunsplit(parts._replace(path=f"/{service}/{db}"))
    return urlunsplit(parts._replace(path=f"/{db}"))


def role_url(role: str, *, explicit: str, base: str) -> str:
    """The URL of one role: its own setting, else REDIS_URL with the role's database number."""
    if explicit:
        return explicit
    if not base:
        return ""
    return with_db(base, _db_of(base) + ROLE_DB_OFFSET[role])


def kombu_broker(url: str) -> tuple[str, dict[str, Any]]:
    """The broker URL and transport options Celery (kombu) expects for this URL.

    kombu spells Sentinel as `sentinel://host:port/db;sentinel://host2:port/db` plus the
    transport option `master_name`.
    """
    if not is_sentinel(url):
        return url, {}
    parsed = parse_sentinel(url)
    auth = ""
    if parsed.password is not None:
        auth = f"{parsed.username or ''}:{parsed.password}@"
    hosts = ";".join(
        f"sentinel://{auth}{host}:{port}/{parsed.db}" for host, port in parsed.sentinels
    )
    options: dict[str, Any] = {"master_name": parsed.service}
    if parsed.password is not None:
        options["sentinel_kwargs"] = {"password": parsed.password}
    return hosts, options


def redis_client(url: str, **options: Any) -> Any:
    """A redis-py client for a plain or a Sentinel URL (the master, found through the sentinels)."""
    import redis
    from redis.sentinel import Sentinel

    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    parsed = parse_sentinel(url)
    sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
    if parsed.password is not None:
        sentinel_kwargs["password"] = parsed.password
    sentinel_cls: Any = Sentinel  # redis-py's sentinel module is untyped
    sentinel = sentinel_cls(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs, **options)
    return sentinel.master_for(
        parsed.service, db=parsed.db, username=parsed.username, password=parsed.password
    )


def sentinel_pool(url: str, **options: Any) -> Any:
    """A connection pool to the current master of a Sentinel URL (follows failovers)."""
    from redis.sentinel import Sentinel, SentinelConnectionPool

    sentinel_cls: Any = Sentinel  # redis-py's sentinel module is untyped
    pool_cls: Any = SentinelConnectionPool
    parsed = parse_sentinel(url)
    sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
    if parsed.password is not None:
        sentinel_kwargs["password"] = parsed.password
    options.pop("parser_class", None)
    sentinel = sentinel_cls(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs)
    return pool_cls(
        parsed.service,
        sentinel,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        **options,
    )
