"""The embedded default (SQLite, `make run`) serves several agents at once without a 500.

Six agents log in to a real gunicorn (3 worker processes x 4 threads) on a fresh SQLite file,
then all at the same instant claim and annotate the same tickets over HTTP. Every answer is a
page (200 or a redirect), never "database is locked": WAL, a busy timeout and IMMEDIATE
transactions (desk/settings.py) make the writers queue instead of failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.served import Gunicorn
from tests.integration.harness import REPO_ROOT, HttpClient
from tests.second_factor import totp_code

AGENTS = 6
TICKETS = 8
PASSWORD = "staff password 123"

SEED = f"""
from tests.factories import StaffFactory, TicketFactory
from tests.second_factor import ensure_device
for i in range({AGENTS}):
    ensure_device(StaffFactory(username=f"agent{{i}}"))
for _ in range({TICKETS}):
    print(TicketFactory().reference)
"""


def _embedded_env(var_dir: Path) -> dict[str, str]:
    """`make run`'s environment: no DATABASE_URL (SQLite in var/), no Redis, DEBUG on."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "PYTEST_ADDOPTS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="desk.settings",
        DEBUG="1",
        GUICHET_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def embedded_desk(tmp_path: Path) -> Iterator[tuple[Gunicorn, list[str]]]:
    env = _embedded_env(tmp_path / "var")
    (tmp_path / "var" / "mail").mkdir(parents=True)
    _manage(env, "migrate", "--no-input")
    references = _manage(env, "shell", "--no-imports", stdin=SEED).split()
    assert len(references) == TICKETS
    server = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log", workers=3, threads=4)
    server.start()
    try:
        yield server, references
    finally:
        server.stop()


def test_agents_claiming_and_noting_at_once_never_get_a_server_error(
    embedded_desk: tuple[Gunicorn, list[str]], tmp_path: Path
) -> None:
    server, references = embedded_desk
    clients = []
    for i in range(AGENTS):
        client = HttpClient(server.url, timeout=60)
        login = client.submit("/desk/login/", {"username": f"agent{i}", "password": PASSWORD})
        assert login.path == "/desk/second-factor/", (login.status, login.path)
        login = client.submit(login.url, {"otp_token": totp_code()})  # the tests' known key
        assert login.path == "/desk/", (login.status, login.path)
        clients.append(client)
    # Each agent's CSRF token: the cookie's value is accepted as the form's token.
    tokens = [client.cookie("csrftoken") or "" for client in clients]
    assert all(tokens)
    barrier = threading.Barrier(AGENTS)
    statuses: list[list[int]] = [[] for _ in range(AGENTS)]

    def work(i: int) -> None:
        client, token = clients[i], tokens[i]
        try:
            barrier.wait(timeout=60)
            for reference in references:
                base = f"/desk/tickets/{reference}/"
                for action, data in (("claim", {}), ("note", {"body": f"agent{i} was here"})):
                    response = client.post(
                        f"{base}{action}/",
                        {"csrfmiddlewaretoken": token, **data},
                        referer=server.url + base,
                        follow=False,
                    )
                    statuses[i].append(response.status)
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            statuses[i].append(599)
            raise AssertionError(repr(exc)) from exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(AGENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    answered = [status for per_agent in statuses for status in per_agent]
    assert len(answered) == AGENTS * TICKETS * 2
    errors = [status for status in answered if status >= 500]
    log = (tmp_path / "gunicorn.log").read_text()
    assert not errors, f"{len(errors)} server errors; log tail:\n{log[-3000:]}"
    assert "database is locked" not in log
    assert set(answered) <= {200, 302}, sorted(set(answered))
