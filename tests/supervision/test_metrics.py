"""GET /metrics: Prometheus text, protected; names and labels are an interface (dashboards, alerts).

docs/operations.md, "Metrics". The multi-process case (gunicorn, two workers) is proved over real
HTTP in tests/faults/test_metrics_over_http.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import MemberAccountFactory, MemberFactory, TicketFactory
from tests.requests import registration_form
from tickets.models import TicketState
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus
from workflows.services.delivery import outbox_deliver
from workflows.tasks import worker_heartbeat

pytestmark = pytest.mark.django_db


def scrape(
    client: Client | None = None, **extra: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_only_an_allowed_network_or_the_token_may_scrape() -> None:
    outsider = {"REMOTE_ADDR": "203.0.113.9"}
    with override_settings(
        GUICHET_METRICS_TOKEN="s3cret-token", GUICHET_METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"]
    ):
        assert Client().get("/metrics", **outsider).status_code == 403
        assert (
            Client().get("/metrics", **outsider, HTTP_AUTHORIZATION="Bearer wrong").status_code
            == 403
        )
        assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
        scrape(**outsider, HTTP_AUTHORIZATION="Bearer s3cret-token")
    with override_settings(GUICHET_METRICS_TOKEN=""):
        assert Client().get("/metrics", **outsider, HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_requests_are_counted_and_timed_by_route_pattern_never_by_path() -> None:
    before = scrape()
    Client().get("/requests/ABCD-EFGH-IJ/")
    after = scrape()
    route = "/requests/(?P<reference>[^/]{1,64})/"
    labels = {"route": route, "method": "GET", "status": "404"}
    assert (
        value(after, "guichet_http_requests_total", **labels)
        == value(before, "guichet_http_requests_total", **labels) + 1
    )
    assert (
        value(after, "guichet_http_request_duration_seconds_count", route=route, method="GET") >= 1
    )
    assert not any("ABCD" in str(key) for key in after)


def test_tickets_by_state_and_the_oldest_undecided_age() -> None:
    TicketFactory.create_batch(2)
    old = TicketFactory()
    old.created_at = timezone.now() - dt.timedelta(hours=3)
    old.save(update_fields=["created_at"])
    samples = scrape()
    assert value(samples, "guichet_tickets", state=TicketState.PENDING) == 3
    assert value(samples, "guichet_tickets", state=TicketState.CONFIRMED) == 0
    assert 3 * 3600 - 60 < value(samples, "guichet_oldest_undecided_age_seconds") < 3 * 3600 + 60
    assert ("guichet_tickets_over_target", (("kind", "REG"),)) in samples


def test_outbox_backlog_failures_and_codes_late_on_the_promise() -> None:
    ticket = TicketFactory(
        state=TicketState.CONFIRMED, decided_at=timezone.now() - dt.timedelta(minutes=25)
    )
    late = OutboxMessage.objects.create(
        ticket=ticket, template=EmailTemplate.CREDENTIALS, recipient="a@example.org"
    )
    OutboxMessage.objects.filter(pk=late.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=25)
    )
    OutboxMessage.objects.create(
        template=EmailTemplate.REJECTION, recipient="b@example.org", status=OutboxStatus.FAILED
    )
    OutboxMessage.objects.create(
        template=EmailTemplate.ACKNOWLEDGMENT, recipient="c@example.org", status=OutboxStatus.SENT
    )
    samples = scrape()
    assert value(samples, "guichet_outbox_messages", status="pending") == 1
    assert value(samples, "guichet_outbox_messages", status="failed") == 1
    assert ("guichet_outbox_messages", (("status", "sent"),)) not in samples
    assert 24 * 60 < value(samples, "guichet_outbox_oldest_unsent_age_seconds") < 26 * 60
    assert value(samples, "guichet_codes_over_promise") == 1


def test_login_failures_locks_and_limits_hit_are_counted() -> None:
    MemberAccountFactory(member=MemberFactory(member_number="720000001"))
    before = scrape()
    with override_settings(GUICHET_LOGIN_FAILURES_BEFORE_LOCK=2):
        for _ in range(2):
            Client().post("/login/", {"username": "720000001", "password": "wrong password!"})
    after = scrape()
    for name in ("guichet_login_failures_total", "guichet_login_locks_total"):
        assert value(after, name, portal="member") > value(before, name, portal="member")
    with override_settings(GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE=1):
        for _ in range(2):
            Client().get("/requests/ABCD-EFGH-IJ/")
    assert value(scrape(), "guichet_limits_hit_total", scope="status-ip") >= 1


def test_celery_task_outcomes_are_counted_by_task() -> None:
    name = "workflows.tasks.worker_heartbeat"
    before = value(scrape(), "guichet_celery_tasks_total", task=name, outcome="SUCCESS")
    worker_heartbeat.delay()
    assert value(scrape(), "guichet_celery_tasks_total", task=name, outcome="SUCCESS") == before + 1
    durations = "guichet_celery_task_duration_seconds_count"
    assert value(scrape(), durations, task=name) >= 1


def test_outbox_send_outcomes_are_counted(django_capture_on_commit_callbacks: Any) -> None:
    before = value(scrape(), "guichet_outbox_sends_total", outcome="sent")
    skipped = value(scrape(), "guichet_outbox_sends_total", outcome="skipped")
    MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    with django_capture_on_commit_callbacks(execute=True):
        assert Client().post("/register/", registration_form()).status_code == 302
    assert value(scrape(), "guichet_outbox_sends_total", outcome="sent") == before + 1
    message = OutboxMessage.objects.get()
    outbox_deliver(message_id=message.pk)  # already sent: a no-op, counted as such
    assert value(scrape(), "guichet_outbox_sends_total", outcome="skipped") == skipped + 1
