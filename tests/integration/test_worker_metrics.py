"""A real Celery worker with GUICHET_WORKER_METRICS_PORT serves its own Prometheus text: the task
and outbox counters of its pool children, without sharing gunicorn's multiprocess directory
(core/worker_metrics.py, docs/operations.md "Metrics")."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import MemberFactory
from tests.integration.harness import CeleryWorker, SmtpSink, outbox_template_of
from tests.requests import registration_form
from workflows.tasks import worker_heartbeat

# The spare range this suite's private servers may use.
PORTS = range(21400, 21500)


def _spare_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no spare port in 21400-21499")


def _scrape(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(url: str, check: Callable[[str], bool], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        status, text = _scrape(url)
        if status == 200 and check(text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"worker metrics never showed the expected figures:\n{text[:3000]}")


HEARTBEAT = "workflows.tasks.worker_heartbeat"
DELIVER = "workflows.tasks.outbox_deliver_task"


def test_the_worker_serves_its_pool_childrens_task_and_outbox_metrics(
    celery_worker_factory: Callable[..., CeleryWorker], smtp_sink: SmtpSink
) -> None:
    port = _spare_port()
    worker = celery_worker_factory(
        "metrics", beat=False, env={"GUICHET_WORKER_METRICS_PORT": str(port)}
    )
    url = f"http://127.0.0.1:{port}/metrics"
    worker.wait_for_log(rf"worker metrics exporter listening on 127\.0\.0\.1:{port}")
    status, before = _scrape(url)
    assert status == 200
    assert _value(before, "guichet_celery_tasks_total", task=HEARTBEAT, outcome="SUCCESS") == 0

    # A task run by the prefork child (not the process serving the port) is counted and timed.
    worker_heartbeat.delay()
    text = _wait_for(
        url,
        lambda t: _value(t, "guichet_celery_tasks_total", task=HEARTBEAT, outcome="SUCCESS") == 1,
    )
    assert _value(text, "guichet_celery_task_duration_seconds_count", task=HEARTBEAT) == 1

    # A submission's acknowledgment, sent by the worker: one outbox send counted "sent".
    MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    assert Client().post("/register/", registration_form()).status_code == 302
    smtp_sink.wait_for(lambda m: outbox_template_of(m) == "acknowledgment")
    text = _wait_for(url, lambda t: _value(t, "guichet_outbox_sends_total", outcome="sent") >= 1)
    assert _value(text, "guichet_celery_tasks_total", task=DELIVER, outcome="SUCCESS") >= 1
    assert (
        "guichet_http_requests" not in text
        or _value(
            text, "guichet_http_requests_total", route="/register/", method="POST", status="302"
        )
        == 0
    ), "the worker exports its own counters, not this test process's"


def test_the_worker_exporter_is_off_by_default_and_never_listens(
    celery_worker_factory: Callable[..., CeleryWorker],
) -> None:
    port = _spare_port()
    worker = celery_worker_factory("no-metrics", beat=False)
    worker_heartbeat.delay()
    worker.wait_for_log(r"worker_heartbeat\[[^]]+\] succeeded")
    assert "worker metrics exporter" not in worker.log_text()
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0
