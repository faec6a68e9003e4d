"""Real-services harness: the service gate, an SMTP sink, a Celery worker process, an HTTP client
that behaves like a browser, and a scan for secrets at rest.

The fixtures in `tests/integration/conftest.py` wrap these classes; fault and recovery tests may
use the classes directly (e.g. start a second, private worker and kill it).
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- the gate ---------------------------------------------------------------------------------


def services_missing_reason() -> str | None:
    """Why the real services cannot be used (None: DATABASE_URL is PostgreSQL, REDIS_URL is set)."""
    from django.conf import settings

    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL is not a PostgreSQL URL")
    if not os.environ.get("REDIS_URL"):
        problems.append("REDIS_URL is unset")
    if not problems:
        return None
    return "integration tests need real services: " + " and ".join(problems)


def in_ci() -> bool:
    """CI=true turns a missing service into a failure (docs/interfaces.md: never a silent skip)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_services() -> None:
    """Skip the calling test (fail it under CI=true) when the real services are not configured."""
    reason = services_missing_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


# --- SMTP sink ---------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def text_part(message: EmailMessage) -> str:
    """The text/plain part of a message (decoded), or '' when it has none."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def html_part(message: EmailMessage) -> str:
    """The text/html part of a message (decoded), or '' when it has none."""
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""


class _SinkHandler:
    """aiosmtpd handler: parse every accepted message and hand it to the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.accept(message, envelope.rcpt_tos)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on loopback (aiosmtpd) keeping every message it accepts, parsed."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    @property
    def url(self) -> str:
        """The EMAIL_URL that points Django's SMTP backend at this sink."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpSink:
        """Listen; returns once the server answers."""
        from aiosmtpd.controller import Controller

        self._controller = Controller(_SinkHandler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def accept(self, message: EmailMessage, recipients: list[str]) -> None:
        """Record one message (called from the SMTP server's thread)."""
        with self._lock:
            self.messages.append(message)
            self.recipients.append(list(recipients))

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._lock:
            self.messages.clear()
            self.recipients.clear()

    def snapshot(self) -> list[EmailMessage]:
        """A copy of the messages received so far, oldest first."""
        with self._lock:
            return list(self.messages)

    def messages_to(self, address: str) -> list[EmailMessage]:
        """Messages whose To header names `address` (case-insensitive), oldest first."""
        address = address.lower()
        return [m for m in self.snapshot() if address in str(m.get("To", "")).lower()]

    def wait_for(
        self, predicate: Callable[[EmailMessage], bool], timeout: float = 60.0
    ) -> EmailMessage:
        """Poll until a received message satisfies `predicate`; return the first such message."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.snapshot():
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                subjects = [str(m.get("Subject")) for m in self.snapshot()]
                raise AssertionError(
                    f"no matching e-mail within {timeout:.0f} s; received: {subjects}"
                )
            time.sleep(0.1)

    def wait_for_count(
        self, predicate: Callable[[EmailMessage], bool], count: int, timeout: float = 60.0
    ) -> list[EmailMessage]:
        """Poll until at least `count` received messages satisfy `predicate`; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.snapshot() if predicate(m)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} matching e-mails after {timeout:.0f} s")
            time.sleep(0.1)


# --- Celery worker process -------------------------------------------------------------------


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for a child process, from a Django DATABASES entry (the *test* database)."""
    quote = urllib.parse.quote
    user = quote(str(settings_dict.get("USER") or ""), safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    name = quote(str(settings_dict["NAME"]), safe="")
    return f"postgres://{credentials}{host}:{port}/{name}"


# --- PgBouncer in transaction mode ------------------------------------------------------------

PGBOUNCER_BINARIES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str | None:
    """Debian's pgbouncer (`.ci/run` installs it), or one on PATH."""
    for candidate in PGBOUNCER_BINARIES:
        if os.access(candidate, os.X_OK):
            return candidate
    import shutil

    return shutil.which("pgbouncer")


class PgBouncer:
    """A private PgBouncer in **transaction** pooling mode in front of the shared PostgreSQL.

    Every database name is forwarded (`* = host=… port=…`), so the test database is reachable
    through it. Few server connections (`default_pool_size=4`) so that consecutive transactions of
    one client really land on different server sessions: whatever relies on session state (an
    advisory lock, a server-side cursor, a prepared statement) breaks here as it would in
    production. Runs as `postgres` when started by root (PgBouncer refuses to run as root).
    """

    def __init__(self, *, upstream_host: str, upstream_port: int, port: int | None = None) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = port or int(os.environ.get("PGBOUNCER_TEST_PORT") or free_port())
        self.directory = Path(tempfile_dir())
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "pgbouncer.log"

    def config(self) -> str:
        return (
            "[databases]\n"
            f"* = host={self.upstream_host} port={self.upstream_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 300\n"
            "default_pool_size = 4\n"
            "reserve_pool_size = 0\n"
            "server_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.log_path}\n"
            f"pidfile = {self.directory / 'pgbouncer.pid'}\n"
        )

    def start(self) -> PgBouncer:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (`.ci/run` installs Debian's package)")
        (self.directory / "users.txt").write_text('"postgres" ""\n', encoding="ascii")
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(self.config(), encoding="ascii")
        command = [binary, "-q", str(ini)]
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            for child in self.directory.iterdir():
                os.chown(child, user.pw_uid, user.pw_gid)
            command[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(command, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log_text()[-2000:]}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def database_settings(self, settings_dict: Mapping[str, Any]) -> dict[str, Any]:
        """A Django DATABASES entry for the same database, through this PgBouncer."""
        return {
            **settings_dict,
            "HOST": "127.0.0.1",
            "PORT": self.port,
            "DISABLE_SERVER_SIDE_CURSORS": True,
            "CONN_MAX_AGE": 0,
        }

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)


def tempfile_dir() -> str:
    import tempfile

    # Owned by `postgres` once started by root (PgBouncer then runs as that user).
    return tempfile.mkdtemp(prefix="guichet-pgbouncer-")


class CeleryWorker:
    """A real `celery -A desk worker` process (prefork, one child, embedded beat) and its log."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_path: Path,
        hostname: str | None = None,
        beat: bool = True,
        extra_args: Iterable[str] = (),
    ) -> None:
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.hostname = hostname or f"guichet-test-{os.getpid()}-{time.monotonic_ns()}@localhost"
        self.beat = beat
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def command(self) -> list[str]:
        """The command line, as an operator would type it (plus test-only flags)."""
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "desk",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=DEBUG",
            f"--hostname={self.hostname}",
            "--without-mingle",
            "--without-gossip",
        ]
        if self.beat:
            command += ["-B", f"--schedule={self.log_path.parent / 'celerybeat-schedule'}"]
        return command + self.extra_args

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> CeleryWorker:
        """Start the process and wait until it answers a control ping."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown reaches beat and children
        )
        self.wait_ready(timeout=timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll `celery inspect ping` (through the test process's app) until the worker answers."""
        from desk.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(f"celery worker exited early:\n{self.log_tail()}")
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise RuntimeError(f"celery worker not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (warm shutdown), then SIGKILL the whole process group; returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(process.pid)
                process.wait(timeout=10)
        self._kill_group(process.pid)  # a pool child or beat left behind
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return process.returncode

    def kill(self) -> None:
        """SIGKILL the main process only (a crash, for fault tests); its children must notice."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def control(self, method: str, **kwargs: Any) -> Any:
        """Broadcast a remote-control command to this worker only (e.g. cancel_consumer)."""
        from desk.celery import app

        return app.control.broadcast(
            method, arguments=kwargs, destination=[self.hostname], reply=True, timeout=5
        )

    def pause(self, queue: str = "celery") -> None:
        """Stop consuming `queue` (messages then wait in Redis); `resume` undoes it."""
        reply = self.control("cancel_consumer", queue=queue)
        assert reply, "the worker did not answer cancel_consumer"

    def resume(self, queue: str = "celery") -> None:
        """Consume `queue` again."""
        reply = self.control("add_consumer", queue=queue)
        assert reply, "the worker did not answer add_consumer"

    def log_text(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Poll the log until the regular expression `pattern` matches; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log_text())
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in the worker log:\n{self.log_tail()}")
            time.sleep(0.2)


def worker_env(*, database_settings: Mapping[str, Any], email_url: str, var_dir: Path) -> dict:
    """The environment of a worker pointed at the test database, the test Redis and the sink."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "PYTEST_ADDOPTS")}
    env.update(
        DJANGO_SETTINGS_MODULE="desk.settings",  # the production settings: real Argon2 hasher
        DATABASE_URL=database_url(database_settings),
        REDIS_URL=os.environ["REDIS_URL"],
        EMAIL_URL=email_url,
        SECRET_KEY=settings.SECRET_KEY,
        LOG_LEVEL="DEBUG",
        GUICHET_OUTBOX_SWEEP_SECONDS="2",
        # A worker killed while it holds the beat lock (desk/beat_lock.py) keeps it until its TTL:
        # short here, so that the next test's beat (and its outbox sweep) starts within seconds.
        GUICHET_BEAT_LOCK_SECONDS="5",
        GUICHET_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    if database_settings.get("DISABLE_SERVER_SIDE_CURSORS"):  # through PgBouncer
        env["DISABLE_SERVER_SIDE_CURSORS"] = "1"
        env["CONN_MAX_AGE"] = str(database_settings.get("CONN_MAX_AGE") or 0)
    # The broker-safety check (docs/security.md §23) stays on: the suite's Redis is persistent
    # and `noeviction` (tests/suite_redis.py), as production's must be.
    return env


def redis_flush(url: str) -> None:
    """Empty the Redis database of `url` (only the test's own db number)."""
    import redis

    redis.Redis.from_url(url).flushdb()


# --- an HTTP client that behaves like a browser ----------------------------------------------


class _LoopbackSecurePolicy(DefaultCookiePolicy):
    """Browsers treat http://localhost as a secure context: Secure (`__Host-`) cookies go there."""

    def return_ok_secure(self, cookie: Any, request: Any) -> bool:
        host = urllib.parse.urlsplit(request.get_full_url()).hostname or ""
        if host in ("localhost", "127.0.0.1", "::1"):
            return True
        return super().return_ok_secure(cookie, request)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Form:
    """One <form> of a page: its action, method and the values a browser would submit."""

    action: str
    method: str
    fields: dict[str, list[str]] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields.setdefault(name, []).append(a.get("value", "on"))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self._form.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._form.fields[self._select] = [value]
                self._select_chosen = True
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select and self._form is not None:
            if not self._select_chosen and self._select_first is not None:
                self._form.fields[self._select] = [self._select_first]
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields[self._textarea] = ["".join(self._text)]
            self._textarea = None


@dataclass
class Response:
    """What came back: status, final URL (after redirects), headers and decoded body."""

    status: int
    url: str
    headers: Mapping[str, str]
    text: str

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    @property
    def forms(self) -> list[Form]:
        parser = _FormParser()
        parser.feed(self.text)
        return parser.forms

    def form(self, action: str | None = None) -> Form:
        """The POST form whose action resolves to the path `action` (default: this page's path,
        i.e. the page's own form rather than, say, the language switch)."""
        wanted = action or self.path
        for candidate in self.forms:
            if candidate.method != "post":
                continue
            target = urllib.parse.urlsplit(urllib.parse.urljoin(self.url, candidate.action)).path
            if target == wanted:
                return candidate
        raise AssertionError(f"no POST form with action {wanted!r} on {self.url}")


class HttpClient:
    """Cookies, CSRF tokens taken from the page's form, Origin and Referer: like a browser."""

    def __init__(self, base_url: str, *, language: str = "fr", timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.timeout = timeout
        self.cookies = CookieJar(policy=_LoopbackSecurePolicy())
        cookie_handler = urllib.request.HTTPCookieProcessor(self.cookies)
        self._follow = urllib.request.build_opener(cookie_handler)
        self._no_follow = urllib.request.build_opener(cookie_handler, _NoRedirect())

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
    ) -> Response:
        """One request; HTTP errors come back as a Response, never as an exception."""
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self._url(path), data=body, method=method)  # noqa: S310
        request.add_header("Accept-Language", self.language)
        request.add_header("User-Agent", "guichet-integration-tests")
        if body is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        opener = self._follow if follow else self._no_follow
        try:
            with opener.open(request, timeout=self.timeout) as raw:
                return Response(raw.status, raw.geturl(), dict(raw.headers), self._decode(raw))
        except urllib.error.HTTPError as error:
            return Response(error.code, error.geturl(), dict(error.headers), self._decode(error))

    @staticmethod
    def _decode(raw: Any) -> str:
        return raw.read().decode("utf-8", errors="replace")

    def get(self, path: str, *, follow: bool = True) -> Response:
        return self.request("GET", path, follow=follow)

    def post(
        self,
        path: str,
        data: Mapping[str, str | list[str]],
        *,
        referer: str | None = None,
        follow: bool = True,
    ) -> Response:
        """POST form data as-is (no token is added: see `submit`)."""
        url = self._url(path)
        parts = urllib.parse.urlsplit(url)
        headers = {"Origin": f"{parts.scheme}://{parts.netloc}", "Referer": referer or url}
        return self.request("POST", path, data=data, headers=headers, follow=follow)

    def submit(
        self,
        page: str,
        data: Mapping[str, str | list[str]],
        *,
        action: str | None = None,
        follow: bool = True,
    ) -> Response:
        """Open `page`, fill its form (the one posting to `action`) with `data`, and send it."""
        response = self.get(page)
        assert response.status == 200, f"GET {page} gave {response.status}"
        form = response.form(action)
        values: dict[str, str | list[str]] = dict(form.fields)
        values.update(data)
        target = urllib.parse.urljoin(response.url, form.action or response.url)
        return self.post(target, values, referer=response.url, follow=follow)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)


# --- the secrets scan -----------------------------------------------------------------------


@dataclass
class ScanReport:
    """Where each secret was found (`found`), and how much was looked at (`scanned`)."""

    found: dict[str, list[str]] = field(default_factory=dict)
    scanned: dict[str, int] = field(default_factory=dict)

    def where(self, secret: str) -> list[str]:
        return self.found.get(secret, [])

    def add(self, secret: str, location: str) -> None:
        self.found.setdefault(secret, []).append(location)


def _needles(secret: str) -> tuple[bytes, bytes]:
    return secret.encode("utf-8"), secret.casefold().encode("utf-8")


def _match(blob: bytes, secrets: Iterable[str]) -> Iterator[str]:
    """Secrets contained in `blob`, exactly or case-insensitively (a lowercased copy leaks too)."""
    folded = blob.decode("utf-8", errors="replace").casefold().encode("utf-8")
    for secret in secrets:
        exact, lower = _needles(secret)
        if exact in blob or lower in folded:
            yield secret


def scan_database(secrets: list[str], report: ScanReport, alias: str = "default") -> None:
    """Every row of every table of the (test) database, as PostgreSQL's COPY text renders it."""
    from django.db import connections
    from psycopg import sql

    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    tables = connection.introspection.table_names(include_views=False)
    rows = 0
    for table in tables:
        buffer = bytearray()
        with raw.cursor() as cursor:
            query = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT").format(sql.Identifier(table))
            with cursor.copy(query) as copy:
                for chunk in copy:
                    buffer += bytes(chunk)
        for number, line in enumerate(bytes(buffer).splitlines(), start=1):
            rows += 1
            for secret in _match(line, secrets):
                report.add(secret, f"db:{table}:row {number}")
    report.scanned["db_tables"] = len(tables)
    report.scanned["db_rows"] = rows


def _redis_values(client: Any, key: bytes) -> list[tuple[str, bytes]]:
    """Every value stored under `key`, read according to its type."""
    kind = client.type(key).decode()
    if kind == "string":
        return [("", client.get(key) or b"")]
    if kind == "list":
        return [(f"[{i}]", v) for i, v in enumerate(client.lrange(key, 0, -1))]
    if kind == "hash":
        return [
            (f"{{{k.decode(errors='replace')}}}", k + b"=" + v)
            for k, v in client.hgetall(key).items()
        ]
    if kind == "set":
        return [("{member}", v) for v in client.smembers(key)]
    if kind == "zset":
        return [(f"<{s}>", v) for v, s in client.zrange(key, 0, -1, withscores=True)]
    if kind == "stream":
        return [
            (
                f"({entry_id.decode()})",
                json.dumps(
                    {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
                ).encode(),
            )
            for entry_id, fields in client.xrange(key)
        ]
    return []


def _decoded_bodies(blob: bytes) -> Iterator[bytes]:
    """Kombu message bodies inside a JSON value (queued or `unacked`), base64-decoded."""
    try:
        document = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        return
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            body = item.get("body")
            properties = item.get("properties") or {}
            if isinstance(body, str) and properties.get("body_encoding") == "base64":
                try:
                    decoded = base64.b64decode(body)
                except ValueError:
                    decoded = b""
                yield decoded
                yield from _decoded_bodies(decoded)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def scan_redis(secrets: list[str], report: ScanReport, url: str) -> None:
    """Every key name and value of the Redis db (type-aware, message bodies decoded, and DUMP)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = 0
    for key in client.scan_iter(count=500):
        keys += 1
        name = key.decode("utf-8", errors="replace")
        for secret in _match(key, secrets):
            report.add(secret, f"redis:{name} (key name)")
        for where, value in _redis_values(client, key):
            for secret in _match(value, secrets):
                report.add(secret, f"redis:{name}{where}")
            for body in _decoded_bodies(value):
                for secret in _match(body, secrets):
                    report.add(secret, f"redis:{name}{where} (message body)")
        dumped = client.dump(key) or b""
        for secret in _match(dumped, secrets):
            report.add(secret, f"redis:{name} (DUMP)")
    report.scanned["redis_keys"] = keys


def scan_logs(secrets: list[str], report: ScanReport, paths: Iterable[Path]) -> None:
    """Every line of the given log files; a JSON line is also read decoded (its escapes undone)."""
    lines = json_lines = 0
    for path in paths:
        if not Path(path).exists():
            continue
        for number, line in enumerate(Path(path).read_bytes().splitlines(), start=1):
            lines += 1
            for secret in _match(line, secrets):
                report.add(secret, f"log:{Path(path).name}:{number}")
            if line.startswith(b"{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                json_lines += 1
                decoded = "\n".join(str(v) for v in entry.values()).encode("utf-8", "replace")
                for secret in _match(decoded, secrets):
                    report.add(secret, f"log:{Path(path).name}:{number} (json)")
    report.scanned["log_lines"] = lines
    report.scanned["json_log_lines"] = json_lines


def secrets_scan(
    secrets: Iterable[str], *, redis_url: str | None, log_paths: Iterable[Path] = ()
) -> ScanReport:
    """Search the test database, the Redis db and the log files for each secret."""
    wanted = [s for s in secrets if s]
    assert all(len(s) >= 4 for s in wanted), "secrets this short would match anything"
    report = ScanReport()
    scan_database(wanted, report)
    if redis_url:
        # The broker's db, and the cache's and the limits store's (core.redis_urls roles).
        from django.conf import settings

        scan_redis(wanted, report, redis_url)
        for alias in ("default", "limits"):
            location = str(settings.CACHES[alias].get("LOCATION", ""))
            if location.startswith("redis://") and location != redis_url:
                scan_redis(wanted, report, location)
    scan_logs(wanted, report, log_paths)
    return report


# --- the outbox ------------------------------------------------------------------------------


def outbox_template_of(message: EmailMessage) -> str:
    """The outbox template an e-mail was built from (its X-Guichet-Message header names the row)."""
    from workflows.models import OutboxMessage

    row = OutboxMessage.objects.filter(pk=int(message["X-Guichet-Message"])).first()
    return row.template if row else ""


def wait_outbox_idle(timeout: float = 60.0) -> None:
    """Wait until every outbox row has been accepted by the mail server (none pending/sending)."""
    from workflows.models import OutboxMessage, OutboxStatus

    deadline = time.monotonic() + timeout
    while True:
        left = list(
            OutboxMessage.objects.exclude(status=OutboxStatus.SENT).values_list(
                "pk", "template", "status", "last_error"
            )
        )
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox not drained after {timeout:.0f} s: {left}")
        time.sleep(0.2)


# --- e-mail contents -------------------------------------------------------------------------

_TEMPORARY_PASSWORD_LINE = re.compile(r"(?=[A-Za-z]*\d[A-Za-z]*$)[A-Za-z0-9]{10}")


def temporary_password_in(message: EmailMessage) -> str:
    """The temporary password of a credentials e-mail: the one plain-text line shaped like one
    (10 characters, 9 letters and 1 digit), whatever the language of the labels."""
    lines = [line.strip() for line in text_part(message).splitlines()]
    found = [line for line in lines if _TEMPORARY_PASSWORD_LINE.fullmatch(line)]
    assert len(found) == 1, f"expected one temporary-password line, found {len(found)}"
    return found[0]


def lines_of(message: EmailMessage) -> list[str]:
    """The stripped lines of the plain-text part."""
    return [line.strip() for line in text_part(message).splitlines()]
