"""A real Sentinel failover under a running Guichet: master killed, replica promoted, service on.

Private servers only, on the spare ports 21400-21499 (tests/faults/services.py,
`sentinel_cluster`): a master, its replica and three sentinels (quorum 2). gunicorn and a real
Celery worker get `REDIS_URL=redis+sentinel://…/guichet/0`, so broker, cache and limits all reach
the master through the sentinels (docs/operations.md, "Redis roles"). Before: a rate limit trips,
a submission's e-mail goes out through the worker. Then the master is SIGKILLed while a prober
hits the limits store and /readyz; once the sentinels promote the replica, the same limit trips
again and a new submission's e-mail goes out through the same worker. Errors are bounded: no 5xx
from a page (the limiter fails open while no master answers), /readyz back within seconds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from celery import Celery

from core.redis_urls import kombu_broker
from tests.factories import MemberFactory
from tests.faults.served import Gunicorn, stack_env
from tests.faults.services import SentinelCluster, sentinel_cluster, spare_port
from tests.integration.harness import CeleryWorker, HttpClient, SmtpSink, outbox_template_of
from tests.integration.steps import register, registration_data

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PORTS = range(21400, 21500)
STATUS_LIMIT = 5
STATUS_PAGE = "/requests/ABCD-EFGH-IJ/"  # the limit counts before any lookup


class SentinelWorker(CeleryWorker):
    """A real worker whose broker is the Sentinel cluster: pinged through a probe app of its own."""

    def __init__(self, *, redis_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.redis_url = redis_url

    def wait_ready(self, timeout: float = 60.0) -> None:
        hosts, options = kombu_broker(self.redis_url)
        # Not the current app: shared tasks published later in this process must keep desk's broker.
        probe = Celery("probe", broker=hosts, set_as_current=False)
        probe.conf.broker_transport_options = options
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.is_running():
                    raise RuntimeError(f"celery worker exited early:\n{self.log_tail()}")
                if probe.control.ping(destination=[self.hostname], timeout=0.5):
                    return
            raise RuntimeError(f"worker not ready after {timeout:.0f} s:\n{self.log_tail()}")
        finally:
            probe.close()


def _limit_trips(client: HttpClient, ip: str) -> int:
    """GET the status page as `ip` (our trusted proxy's X-Forwarded-For) until the per-IP limit
    answers 429; how many GETs that took (0: never)."""
    for n in range(1, STATUS_LIMIT + 3):
        if client.request("GET", STATUS_PAGE, headers={"X-Forwarded-For": ip}).status == 429:
            return n
    return 0


class Prober(threading.Thread):
    """Hit a page and /readyz every 0.2 s, counting what comes back (or what failed)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.client = HttpClient(base_url, timeout=10)
        self.stop = threading.Event()
        self.pages: Counter[str] = Counter()
        self.ready: list[tuple[float, int]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for path, record in (("/help/", self.pages), ("/readyz", None)):
                try:
                    status = self.client.get(path).status
                except Exception as exc:  # a refused connection, a timeout: counted, not raised
                    status = -1
                    if record is not None:
                        record[type(exc).__name__] += 1
                        continue
                if record is not None:
                    record[str(status)] += 1
                else:
                    self.ready.append((time.monotonic(), status))
            self.stop.wait(0.2)


def _wait_promoted(cluster: SentinelCluster, timeout: float = 60.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if cluster.master_port() == cluster.replica.port:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError("the sentinels never promoted the replica")


def test_guichet_carries_on_through_a_sentinel_failover(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    first = MemberFactory(member_number="700300001", last_name="Petit", first_name="Léa")
    second = MemberFactory(member_number="700300002", last_name="Roux", first_name="Hugo")
    with sentinel_cluster(PORTS) as cluster:
        env = stack_env(
            redis_url=cluster.url,
            email_url=f"smtp://127.0.0.1:{smtp_sink.port}",
            var_dir=tmp_path,
            extra={
                "GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE": str(STATUS_LIMIT),
                "GUICHET_OUTBOX_SWEEP_SECONDS": "2",
                "GUICHET_BEAT_LOCK_SECONDS": "5",
                # The limit probes come "from" their own addresses, the submissions from loopback.
                "GUICHET_TRUSTED_PROXY_COUNT": "1",
            },
        )
        server = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log", workers=2, threads=2)
        server.port = spare_port(PORTS)
        worker = SentinelWorker(
            redis_url=cluster.url, env=env, log_path=tmp_path / "worker" / "worker.log"
        )
        server.start()
        try:
            worker.start()
            # Before: the limit trips after STATUS_LIMIT views; a submission's e-mail is sent.
            browser = HttpClient(server.url)
            assert _limit_trips(HttpClient(server.url), ip="203.0.113.7") == STATUS_LIMIT + 1
            register(browser, registration_data(first, email="lea@example.org"))
            smtp_sink.wait_for(
                lambda m: (
                    "lea@example.org" in m["To"] and outbox_template_of(m) == "acknowledgment"
                ),
                timeout=60,
            )

            prober = Prober(server.url)
            prober.start()
            time.sleep(1)
            killed_at = time.monotonic()
            cluster.kill_master()
            promoted_after = _wait_promoted(cluster)
            time.sleep(5)  # clients reconnect to the new master

            # After: the limit is enforced on the new master, for a new client exactly as before,
            # and for the first one at once if its counter replicated in time (else afresh).
            trips_after = _limit_trips(HttpClient(server.url), ip="203.0.113.8")
            trips_again = _limit_trips(HttpClient(server.url), ip="203.0.113.7")
            # ... and a new submission's e-mail is sent by the same worker through the new master.
            register(HttpClient(server.url), registration_data(second, email="hugo@example.org"))
            smtp_sink.wait_for(
                lambda m: (
                    "hugo@example.org" in m["To"] and outbox_template_of(m) == "acknowledgment"
                ),
                timeout=90,
            )
            prober.stop.set()
            prober.join(timeout=15)
            worker_alive = worker.is_running()
        finally:
            worker.stop()
            server.stop()

    not_ready = [status for _, status in prober.ready if status != 200]
    print(  # the figures, for docs/operations.md (pytest -s shows them)
        f"sentinel failover: promoted after {promoted_after:.1f} s; pages {dict(prober.pages)};"
        f" /readyz not ready {len(not_ready)}/{len(prober.ready)} probes"
    )
    assert promoted_after < 30, promoted_after
    assert trips_after == STATUS_LIMIT + 1, trips_after
    assert trips_again in (1, STATUS_LIMIT + 1), trips_again
    assert worker_alive, "the worker survived the failover (no restart needed)"
    # Pages never failed: 200s only (the limiter fails open while no master answers).
    assert set(prober.pages) == {"200"}, prober.pages
    assert sum(prober.pages.values()) >= 10
    # /readyz may say 503 while no master answers, and is 200 again soon after the promotion.
    first_ready_again = next(
        (t for t, status in prober.ready if t > killed_at + promoted_after and status == 200),
        None,
    )
    assert first_ready_again is not None, prober.ready
    assert first_ready_again - killed_at < promoted_after + 15, (promoted_after, prober.ready)
    assert all(status in (200, 503) for _, status in prober.ready), prober.ready
