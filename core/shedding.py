"""Overload shedding: a bounded number of password hashes at once per node; beyond it, 503 now.

Argon2 costs a core for tens of milliseconds; above what the cores can hash, requests would wait in
gunicorn's backlog without bound and every page would slow down, the desk's included. The public
forms that hash (GUICHET_SHED_URL_NAMES) take one of GUICHET_HASH_CONCURRENCY slots for the whole
POST; when none is free they answer 503 with Retry-After at once, a translated page saying nothing
was recorded. Other pages (the desk, GETs) never wait for a slot.

Slots are `flock`s on files in GUICHET_SHED_DIR: they bound every process and thread of the node
together, and a process that dies releases its slot with its file descriptors.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.metrics import SHED


@contextmanager
def hash_slot() -> Iterator[bool]:
    """Hold one free slot while the block runs; yields False (holding nothing) when all are busy."""
    slots = settings.GUICHET_HASH_CONCURRENCY
    if slots <= 0:
        yield True
        return
    directory = Path(settings.GUICHET_SHED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % slots  # spread the first try so processes do not all probe slot 0
    for i in range(slots):
        fd = os.open(directory / f"slot-{(start + i) % slots}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    yield False


class OverloadSheddingMiddleware:
    """POSTs to the hashing public forms need a slot; without one: 503 + Retry-After, fast."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., HttpResponse],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        match = request.resolver_match
        if request.method != "POST" or match is None:
            return None
        if match.url_name not in settings.GUICHET_SHED_URL_NAMES:
            return None
        with hash_slot() as held:
            if held:
                return view(request, *args, **kwargs)
        SHED.labels(match.url_name).inc()
        retry_after = settings.GUICHET_SHED_RETRY_AFTER_SECONDS
        response = render(request, "503.html", {"retry_after": retry_after}, status=503)
        response["Retry-After"] = str(retry_after)
        return response
