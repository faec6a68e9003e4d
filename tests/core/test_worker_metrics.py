"""The worker's exporter: who may scrape it, when it turns multiprocess mode on, what it serves
(core/worker_metrics.py; the real worker in tests/integration/test_worker_metrics.py)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from core.metrics import OUTBOX_SENDS
from core.worker_metrics import (
    MULTIPROC_ENV,
    PORT_ENV,
    exporter_start,
    multiprocess_dir_prepare,
    scrape_allowed,
)

WORKER = ["/venv/bin/celery", "-A", "desk", "worker", "--pool=prefork"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    # setenv first, so that the value before the test (set or not) is what comes back after it,
    # even when multiprocess_dir_prepare writes os.environ itself.
    for name in (MULTIPROC_ENV, PORT_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    yield monkeypatch


def test_multiprocess_mode_is_left_alone_unless_a_worker_has_the_port_set(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert multiprocess_dir_prepare(WORKER) is None  # port unset: off by default
    clean_env.setenv(PORT_ENV, "21401")
    for not_a_worker in (
        ["/venv/bin/gunicorn", "desk.wsgi"],
        ["manage.py", "runserver"],
        ["/venv/bin/celery", "-A", "desk", "beat"],
        ["/venv/bin/celery", "-A", "desk", "inspect", "ping"],
    ):
        assert multiprocess_dir_prepare(not_a_worker) is None, not_a_worker
    assert MULTIPROC_ENV not in os.environ


def test_a_worker_with_the_port_gets_a_private_directory_or_keeps_the_operators(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv(PORT_ENV, "21401")
    private = multiprocess_dir_prepare(["/usr/lib/python3/celery/__main__.py", *WORKER[1:]])
    assert private is not None and Path(private).is_dir()
    assert os.environ[MULTIPROC_ENV] == private
    clean_env.setenv(MULTIPROC_ENV, str(tmp_path))
    assert multiprocess_dir_prepare(WORKER) == str(tmp_path)
    Path(private).rmdir()


@override_settings(GUICHET_METRICS_TOKEN="", GUICHET_METRICS_ALLOWED_NETWORKS=["127.0.0.1/32"])
def test_scrapers_are_those_of_slash_metrics_loopback_by_default() -> None:
    assert scrape_allowed(peer="127.0.0.1", authorization="")
    assert not scrape_allowed(peer="10.1.2.3", authorization="")
    assert not scrape_allowed(peer="not an address", authorization="")
    assert not scrape_allowed(peer="10.1.2.3", authorization="Bearer guess")


@override_settings(GUICHET_METRICS_TOKEN="s3cret-token", GUICHET_METRICS_ALLOWED_NETWORKS=[])
def test_a_bearer_token_opens_it_from_anywhere_and_only_the_right_one() -> None:
    assert scrape_allowed(peer="10.1.2.3", authorization="Bearer s3cret-token")
    assert not scrape_allowed(peer="10.1.2.3", authorization="Bearer s3cret-tokeN")
    assert not scrape_allowed(peer="127.0.0.1", authorization="")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, "", ""


def test_the_exporter_serves_prometheus_text_to_allowed_scrapers_only() -> None:
    OUTBOX_SENDS.labels("sent").inc()
    server = exporter_start(bind="127.0.0.1", port=0)  # any free port
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with override_settings(
            GUICHET_METRICS_TOKEN="tok-123", GUICHET_METRICS_ALLOWED_NETWORKS=[]
        ):
            assert _get(f"{url}/metrics")[0] == 403
            status, text, content_type = _get(f"{url}/metrics", {"Authorization": "Bearer tok-123"})
            assert _get(f"{url}/elsewhere", {"Authorization": "Bearer tok-123"})[0] == 404
        with override_settings(GUICHET_METRICS_ALLOWED_NETWORKS=["127.0.0.1/32"]):
            assert _get(url)[0] == 200
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert 'guichet_outbox_sends_total{outcome="sent"}' in text
