"""Django's Redis cache backend, also reachable through Redis Sentinel (core.redis_urls)."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from core.redis_urls import is_sentinel, sentinel_pool


class _SentinelCacheClient(RedisCacheClient):
    """Reads and writes both go to the master the sentinels name (no stale replica reads)."""

    def _get_connection_pool(self, write: bool) -> Any:
        state: Any = self  # Django's private attributes, absent from django-stubs
        if 0 not in state._pools:
            state._pools[0] = sentinel_pool(state._servers[0], **state._pool_options)
        return state._pools[0]


class GuichetRedisCache(RedisCache):
    """`LOCATION` is a `redis://` URL or one `redis+sentinel://` URL (hosts comma-separated)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        if isinstance(server, str) and is_sentinel(server):
            self._servers = [server]
            self._class = _SentinelCacheClient
