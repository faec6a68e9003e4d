"""The Celery worker's own Prometheus exporter (GUICHET_WORKER_METRICS_PORT, off by default).

Without it a worker's task counters show on /metrics only when the worker shares the node's
PROMETHEUS_MULTIPROC_DIR with gunicorn. With a port set, the worker's main process serves
Prometheus text on GUICHET_WORKER_METRICS_BIND:port (loopback by default) for the same scrapers
as /metrics (a bearer GUICHET_METRICS_TOKEN or a peer in GUICHET_METRICS_ALLOWED_NETWORKS), adding
up every pool child's counters: tasks by name and outcome, task durations, outbox send outcomes,
the codes delivery latency. docs/operations.md, "Metrics".

The pool children write their values to files (prometheus-client's multiprocess mode), which
must be chosen before the first metric exists: `multiprocess_dir_prepare` runs when the Celery
app is imported (desk/celery.py), before Django or prometheus-client are loaded. Import-light on
purpose: only the standard library and Celery's signals at module level.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celery.signals import worker_ready, worker_shutdown

PORT_ENV = "GUICHET_WORKER_METRICS_PORT"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

logger = logging.getLogger("guichet.metrics")

_server: ThreadingHTTPServer | None = None


def _is_worker_command(argv: list[str]) -> bool:
    """`celery … worker …` (also `python -m celery`), not beat, inspect or gunicorn."""
    return bool(argv) and "celery" in argv[0] and "worker" in argv[1:]


def multiprocess_dir_prepare(argv: list[str] | None = None) -> str | None:
    """In a worker with the exporter on, make sure the pool children write to a shared directory.

    An operator's PROMETHEUS_MULTIPROC_DIR is kept (the exporter then also shows whatever else
    writes there); otherwise a private directory is created and removed when the worker exits.
    Returns the directory, or None when the exporter is off or this is not a worker.
    """
    argv = sys.argv if argv is None else argv
    if not os.environ.get(PORT_ENV, "").strip() or not _is_worker_command(argv):
        return None
    if os.environ.get(MULTIPROC_ENV):
        return os.environ[MULTIPROC_ENV]
    directory = tempfile.mkdtemp(prefix="guichet-worker-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # never from a forked pool child
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory


def scrape_allowed(*, peer: str, authorization: str) -> bool:
    """The rule of /metrics (supervision.metrics.scrape_allowed) for a raw peer and header."""
    from django.conf import settings

    token = settings.GUICHET_METRICS_TOKEN
    if token and authorization.startswith("Bearer "):
        return secrets.compare_digest(authorization[7:].encode(), token.encode())
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.GUICHET_METRICS_ALLOWED_NETWORKS
    )


def worker_exposition() -> bytes:
    """Every process's counters from the multiprocess directory (this process's if none)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        collector: Any = MultiProcessCollector  # untyped in prometheus-client
        collector(registry)
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))


class _Handler(BaseHTTPRequestHandler):
    server_version = "guichet-worker"
    sys_version = ""

    def do_GET(self) -> None:
        from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

        if self.path.split("?", 1)[0] not in ("/", "/metrics"):
            self._answer(404, b"")
            return
        if not scrape_allowed(
            peer=self.client_address[0], authorization=self.headers.get("Authorization", "")
        ):
            self._answer(403, b"")
            return
        self._answer(200, worker_exposition(), CONTENT_TYPE_PLAIN_0_0_4)

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one line every 15 s per scraper would drown the worker's)."""


def exporter_start(*, bind: str, port: int) -> ThreadingHTTPServer:
    """Serve the worker's metrics on bind:port in a daemon thread; returns the server."""
    server = ThreadingHTTPServer((bind, port), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True)
    thread.start()
    logger.info("worker metrics exporter listening on %s:%s", bind, server.server_address[1])
    return server


@worker_ready.connect
def _exporter_on_worker_ready(**kwargs: Any) -> None:
    global _server
    from django.conf import settings

    port = settings.GUICHET_WORKER_METRICS_PORT
    if port and _server is None:
        _server = exporter_start(bind=settings.GUICHET_WORKER_METRICS_BIND, port=port)


@worker_shutdown.connect
def _exporter_on_worker_shutdown(**kwargs: Any) -> None:
    global _server
    if _server is not None:
        _server.shutdown()
        _server.server_close()
        _server = None
