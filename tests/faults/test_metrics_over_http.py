"""/metrics over real HTTP from gunicorn with two workers: every worker's requests are counted.

Multiprocess mode (PROMETHEUS_MULTIPROC_DIR, ./gunicorn.conf.py): whichever worker answers the
scrape, the counters are the sum over both, so no request is lost from the figures.
"""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.served import Gunicorn, stack_env
from tests.faults.services import private_redis

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUTE = {"route": "/livez", "method": "GET", "status": "200"}


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 - our loopback http URL
        return response.status, response.read().decode(), dict(response.headers)


def _livez_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "guichet_http_requests_total" and sample.labels == ROUTE:
                return sample.value
    return 0.0


def test_two_gunicorn_workers_add_up_in_one_scrape(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    with private_redis() as redis:
        env = stack_env(
            redis_url=redis.url,
            email_url="smtp://127.0.0.1:1",
            var_dir=tmp_path,
            extra={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
        )
        server = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log", workers=2).start()
        try:
            # Concurrent clients, so both sync workers take requests.
            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(lambda _: _get(f"{server.url}/livez")[0], range(80)))
            assert statuses == [200] * 80
            scrapes = [_get(f"{server.url}/metrics")[1] for _ in range(6)]
            pids = {p.name for p in multiproc.glob("counter_*.db")}
        finally:
            server.stop()
    assert len(pids) == 2, "both workers answered and wrote their counters"
    # Every scrape, whichever worker served it, sees all 80 requests.
    assert [_livez_count(text) for text in scrapes] == [80.0] * 6
    assert "guichet_tickets{state=" in scrapes[0]
