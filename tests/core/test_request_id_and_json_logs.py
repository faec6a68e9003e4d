"""Logs are JSON lines carrying a request id; the id is echoed in X-Request-ID and follows tasks.

docs/operations.md, "Logs". The secret scan of the integration suite reads these JSON lines
decoded too (tests/integration/harness.py, scan_logs).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.test import Client, override_settings

from core.logging import (
    REQUEST_ID,
    JSONFormatter,
    RequestIdFilter,
    _request_id_in_task,
    _request_id_out_of_task,
    _request_id_to_task,
)
from tests.factories import MemberAccountFactory, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The production handler's formatter and filter, on a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_a_log_line_is_json_with_the_request_id_of_the_response(json_log: io.StringIO) -> None:
    MemberAccountFactory(member=MemberFactory(member_number="720000001"))
    response = Client().post("/login/", {"username": "720000001", "password": "wrong password!"})
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    failed = [e for e in lines if e["message"].startswith("member login failed")]
    assert failed, lines
    assert failed[0]["request_id"] == request_id
    assert failed[0]["level"] == "INFO" and failed[0]["logger"] == "guichet.auth"
    assert failed[0]["ts"].endswith("Z")
    assert "wrong password!" not in json_log.getvalue()


def test_each_request_gets_its_own_id() -> None:
    ids = {Client().get("/livez")["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=1)
def test_the_trusted_proxys_request_id_is_kept_and_echoed() -> None:
    response = Client().get("/livez", HTTP_X_REQUEST_ID="lb-4f2a9c1e-77")
    assert response["X-Request-ID"] == "lb-4f2a9c1e-77"


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=1)
def test_a_malformed_request_id_is_replaced() -> None:
    forged = "x\nFAKE LOG LINE"
    response = Client().get("/livez", HTTP_X_REQUEST_ID=forged)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@override_settings(GUICHET_TRUSTED_PROXY_COUNT=0)
def test_without_a_trusted_proxy_a_client_cannot_choose_its_id() -> None:
    response = Client().get("/livez", HTTP_X_REQUEST_ID="chosen-by-the-client")
    assert response["X-Request-ID"] != "chosen-by-the-client"


def test_control_characters_stay_encoded_in_json(json_log: io.StringIO) -> None:
    logging.getLogger("guichet.test").addFilter(RequestIdFilter())
    from core.logging import ControlCharacterFilter

    record = logging.LogRecord("guichet.test", logging.WARNING, __file__, 1, "a\nb é", None, None)
    ControlCharacterFilter().filter(record)
    RequestIdFilter().filter(record)
    line = JSONFormatter().format(record)
    assert "\n" not in line and json.loads(line)["message"] == "a\\x0ab é"
    assert "é" in line  # not \\u-escaped: a raw scan for a secret still finds it


def test_the_request_id_travels_in_the_task_headers_and_back_in_the_worker() -> None:
    headers: dict[str, str] = {}
    token = REQUEST_ID.set("req-0123456789")
    try:
        _request_id_to_task(headers=headers)
    finally:
        REQUEST_ID.reset(token)
    assert headers == {"guichet_request_id": "req-0123456789"}
    # In the worker, Celery exposes custom headers on task.request.
    task = SimpleNamespace(request=SimpleNamespace(guichet_request_id="req-0123456789"))
    _request_id_in_task(task_id="t1", task=task)
    assert REQUEST_ID.get() == "req-0123456789"
    _request_id_out_of_task(task_id="t1")
    assert REQUEST_ID.get() == ""
