"""Keyset chunks: read a large ordered result a bounded chunk at a time, one short query each.

`WHERE (k1, k2, …) > (last row's keys) ORDER BY k1, k2, … LIMIT n`, repeated until a short chunk.
Unlike `QuerySet.iterator()` on PostgreSQL this holds no server-side cursor (a named cursor kept
open across fetches, which PgBouncer in transaction mode would hand to another client), no
transaction stays open between chunks, and memory is bounded by the chunk. The key must be
non-null and unique as a whole (end it with the primary key) and should match an index, so that
every chunk is an index range scan.

Each chunk is its own read: rows committed during the walk may or may not appear, but a row
present throughout appears exactly once, in key order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

M = TypeVar("M", bound=Model)

DEFAULT_CHUNK_SIZE = 2000


def keyset_after(key: Sequence[str], last: Sequence[Any]) -> Q:
    """`(k1, k2, …) > (v1, v2, …)` as a filter, with `k1 >= v1` first so an index range applies."""
    after = Q()
    for position, field in enumerate(key):
        equal = {key[i]: last[i] for i in range(position)}
        after |= Q(**equal, **{f"{field}__gt": last[position]})
    return Q(**{f"{key[0]}__gte": last[0]}) & after


def keyset_values(
    queryset: QuerySet[Any],
    columns: Sequence[str],
    *,
    key: Sequence[str],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[tuple[Any, ...]]:
    """`values_list(*columns)` rows in `key` order, fetched chunk by chunk."""
    width = len(columns)
    ordered = queryset.order_by(*key)
    last: tuple[Any, ...] | None = None
    while True:
        page = ordered if last is None else ordered.filter(keyset_after(key, last))
        rows = list(page.values_list(*columns, *key)[:chunk_size])
        for row in rows:
            yield row[:width]
        if len(rows) < chunk_size:
            return
        last = rows[-1][width:]


def keyset_objects(
    queryset: QuerySet[M], *, key: Sequence[str], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[M]:
    """Model instances in `key` order (key fields named by attribute, e.g. `ticket_id`)."""
    ordered = queryset.order_by(*key)
    last: list[Any] | None = None
    while True:
        page = ordered if last is None else ordered.filter(keyset_after(key, last))
        objects = list(page[:chunk_size])
        yield from objects
        if len(objects) < chunk_size:
            return
        last = [getattr(objects[-1], field) for field in key]
