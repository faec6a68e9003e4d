"""Log formatting: UTC timestamps, control characters encoded (no forged log lines), JSON lines
with the request id (docs/operations.md, "Logs").

The request id lives in a context variable: set by core.middleware.RequestIdMiddleware for a web
request, carried to Celery in a message header (`guichet_request_id`) and set again around the
task, so one id follows a submission from the form to the e-mail.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("guichet_request_id", default="")
REQUEST_ID_HEADER = "guichet_request_id"


def current_request_id() -> str:
    """The id RequestIdMiddleware validated or generated (or the one a task carried); "" outside."""
    return REQUEST_ID.get()


def bound_to_request_id(callback: Callable[[], object]) -> Callable[[], None]:
    """`callback` run later (an on_commit hook) under the request id current now.

    A commit hook normally runs inside the request, but not when the transaction ends after the
    middleware returned (a test's captured callbacks, a management command's outer atomic): the
    task it publishes must still carry the id of the request that caused it.
    """
    request_id = REQUEST_ID.get()

    def run() -> None:
        token = REQUEST_ID.set(request_id or REQUEST_ID.get())
        try:
            callback()
        finally:
            REQUEST_ID.reset(token)

    return run


class UTCFormatter(logging.Formatter):
    # A staticmethod, as logging.Formatter expects: a plain function would bind to self.
    converter = staticmethod(time.gmtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + (
            f".{int(record.msecs):03d}Z"
        )


class ControlCharacterFilter(logging.Filter):
    """Render CR, LF and other control characters visibly so input cannot forge log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(ord(c) < 32 and c != "\t" for c in message):
            record.msg = "".join(
                c if ord(c) >= 32 or c == "\t" else f"\\x{ord(c):02x}" for c in message
            )
            record.args = None
        return True


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record (`-` outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id (+ exc, process).

    Non-ASCII stays as is (ensure_ascii off) so a scan for a secret finds it in the raw line.
    Only the message and the exception text are written: never `extra` fields, which could
    carry a form's data.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get() or "-",
            "process": record.process,
        }
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


@before_task_publish.connect
def _request_id_to_task(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    current = REQUEST_ID.get()
    if headers is not None and current:
        headers[REQUEST_ID_HEADER] = current


_TASK_TOKENS: dict[str, contextvars.Token[str]] = {}


@task_prerun.connect
def _request_id_in_task(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    carried = getattr(request, REQUEST_ID_HEADER, None) or (
        (getattr(request, "headers", None) or {}).get(REQUEST_ID_HEADER)
    )
    if carried:
        _TASK_TOKENS[task_id] = REQUEST_ID.set(str(carried))


@task_postrun.connect
def _request_id_out_of_task(task_id: str = "", **kwargs: Any) -> None:
    token = _TASK_TOKENS.pop(task_id, None)
    if token is not None:
        REQUEST_ID.reset(token)
