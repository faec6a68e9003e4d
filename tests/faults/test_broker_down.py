"""docs/security.md §20: with Redis (broker and cache) stopped, the site keeps answering and loses
nothing; once Redis is back the outbox sweep delivers every e-mail, exactly once.

The whole stack runs on a private redis-server: gunicorn (2 workers, production settings over
plain HTTP) and a real Celery worker with embedded beat. Agents log in before the outage: desk
and member logins fail closed without the cache (their limiter cannot count), while the public
forms' limiter fails open by design (issue 3) — 50 submissions from one IP pass a limit of 30.

The 5 s bound on each request is a correctness bound (the publish-retry budget is one retry of
0.2 s and the cache's socket timeouts are 0.5 s: a request that hangs on the dead broker would
blow through it), not a benchmark; the figures are printed.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from tests.factories import MemberFactory, StaffFactory
from tests.faults.served import Gunicorn, PrivateBrokerWorker, private_redis_server, stack_env
from tests.integration.harness import HttpClient, Response, SmtpSink
from tests.integration.steps import REFERENCE_IN_PATH, desk_login, registration_data
from tickets.models import Ticket, TicketState
from workflows.models import EmailTemplate, OutboxMessage, OutboxStatus

SUBMISSIONS = 50
CONFIRMATIONS = 20
REQUEST_BOUND_SECONDS = 5.0
SWEEP = {
    "GUICHET_OUTBOX_SWEEP_SECONDS": "1",
    "GUICHET_OUTBOX_SWEEP_GRACE_SECONDS": "1",
    "GUICHET_OUTBOX_RETRY_BASE_SECONDS": "1",
}


class Timed:
    """An HttpClient wrapper recording the duration and status of every request."""

    def __init__(self, client: HttpClient, timings: list[tuple[str, int, float]]) -> None:
        self.client = client
        self.timings = timings

    def _record(self, label: str, started: float, response: Response) -> Response:
        self.timings.append((label, response.status, time.perf_counter() - started))
        return response

    def get(self, path: str) -> Response:
        started = time.perf_counter()
        return self._record(f"GET {path}", started, self.client.get(path, follow=False))

    def submit(self, page: str, data: dict[str, str], *, action: str | None = None) -> Response:
        """GET the page, POST its form without following, then GET where it redirects."""
        shown = self.get(page)
        assert shown.status == 200, (page, shown.status)
        form = shown.form(action)
        values: dict[str, str | list[str]] = {**form.fields, **data}
        target = urllib.parse.urljoin(shown.url, form.action or shown.url)
        started = time.perf_counter()
        posted = self._record(
            f"POST {page}", started, self.client.post(target, values, follow=False)
        )
        assert posted.status == 302, (page, posted.status, posted.text[:500])
        return self.get(posted.location)


def broker_check(web: Gunicorn) -> str:
    """The broker line of /healthz."""
    return json.loads(HttpClient(web.url).get("/healthz").text)["checks"]["broker"]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_broker_down_loses_nothing_and_redis_back_delivers_each_email_once(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    members = [MemberFactory() for _ in range(SUBMISSIONS)]
    StaffFactory(username="agent-outage")

    with private_redis_server() as redis_server:
        env = stack_env(
            redis_url=redis_server.url, email_url=smtp_sink.url, var_dir=tmp_path, extra=SWEEP
        )
        web = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log").start()
        worker = PrivateBrokerWorker(
            broker_url=redis_server.url,
            env=env,
            log_path=tmp_path / "worker" / "worker.log",
            hostname="outage-worker@guichet-tests",
            beat=True,
        )
        try:
            worker.start()
            timings: list[tuple[str, int, float]] = []
            assert broker_check(web) == "ok"

            desk = HttpClient(web.url)
            desk_login(desk, "agent-outage", "staff password 123")

            # --- the outage ---------------------------------------------------------------
            redis_server.stop()
            assert HttpClient(web.url).get("/healthz").status == 503
            assert broker_check(web) == "down"

            browser = Timed(HttpClient(web.url), timings)  # one IP, one cookie jar
            references = []
            for number, member in enumerate(members):
                landed = browser.submit(
                    "/register/", registration_data(member, email=f"outage{number}@example.org")
                )
                assert landed.status == 200, landed.status
                match = REFERENCE_IN_PATH.match(landed.path)
                assert match, landed.path
                references.append(match.group(1))
            assert len(set(references)) == SUBMISSIONS

            agent = Timed(desk, timings)
            for reference in references[:CONFIRMATIONS]:
                page = f"/desk/tickets/{reference}/"
                landed = agent.submit(page, {}, action=f"{page}confirm/")
                assert landed.status == 200 and landed.path == page, landed.status

            assert HttpClient(web.url).get("/healthz").status == 503
            statuses = [status for _, status, _ in timings]
            durations = [seconds for _, _, seconds in timings]
            print(
                f"\n{len(timings)} requests with the broker down: "
                f"median {statistics.median(durations) * 1000:.0f} ms, "
                f"max {max(durations) * 1000:.0f} ms ({max(timings, key=lambda t: t[2])[0]})"
            )
            assert all(status < 500 for status in statuses), [t for t in timings if t[1] >= 500]
            slow = [t for t in timings if t[2] >= REQUEST_BOUND_SECONDS]
            assert not slow, slow

            # Everything is in PostgreSQL, waiting: nothing reached the broker or the sink.
            tickets = Ticket.objects.filter(reference__in=references)
            assert tickets.count() == SUBMISSIONS
            confirmed = set(references[:CONFIRMATIONS])
            assert (
                set(tickets.filter(state=TicketState.CONFIRMED).values_list("reference", flat=True))
                == confirmed
            )
            outbox = OutboxMessage.objects.filter(ticket__reference__in=references)
            assert outbox.filter(template=EmailTemplate.ACKNOWLEDGMENT).count() == SUBMISSIONS
            assert outbox.filter(template=EmailTemplate.CREDENTIALS).count() == CONFIRMATIONS
            assert not outbox.exclude(status=OutboxStatus.PENDING).exists()
            assert not outbox.exclude(dispatched_at=None).exists()
            assert smtp_sink.snapshot() == []

            # --- Redis is back: the beat sweep re-dispatches, the worker drains ---------------
            back = time.monotonic()
            redis_server.start()
            wait_until(
                lambda: not outbox.exclude(status=OutboxStatus.SENT).exists(),
                timeout=180,
                what="the outbox to drain",
            )
            print(f"outbox drained {time.monotonic() - back:.1f} s after Redis came back")
            time.sleep(3)  # a late duplicate (second sweep, redelivery) would arrive now

            ids_by_template = {
                template: set(outbox.filter(template=template).values_list("pk", flat=True))
                for template in (EmailTemplate.ACKNOWLEDGMENT, EmailTemplate.CREDENTIALS)
            }
            received = [int(m["X-Guichet-Message"]) for m in smtp_sink.snapshot()]
            for template, ids in ids_by_template.items():
                got = [pk for pk in received if pk in ids]
                assert sorted(got) == sorted(ids), (template, len(got), len(ids))
            credentials_to = {
                str(m["To"])
                for m in smtp_sink.snapshot()
                if int(m["X-Guichet-Message"]) in ids_by_template[EmailTemplate.CREDENTIALS]
            }
            assert len(credentials_to) == CONFIRMATIONS
            assert broker_check(web) == "ok"
        finally:
            worker.stop()
            web.stop()
