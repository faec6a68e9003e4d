"""Overload over real HTTP: gunicorn (3 workers, real Argon2) with one hash slot per node.

While the slot is taken (by this process: the slot is a file lock shared by every process of the
node, as a hash running in another worker holds it), a member's login POST is answered 503 with
Retry-After at once, the desk login page still answers, and once the slot is free the same POST is
hashed and answered normally. docs/operations.md, "Overload".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.test import override_settings

from core.shedding import hash_slot
from tests.faults.served import Gunicorn, stack_env
from tests.faults.services import private_redis
from tests.integration.harness import HttpClient

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_saturated_node_answers_503_fast_and_the_desk_keeps_working(tmp_path: Path) -> None:
    shed_dir = tmp_path / "shed"
    with private_redis() as redis:
        env = stack_env(
            redis_url=redis.url,
            email_url="smtp://127.0.0.1:1",
            var_dir=tmp_path,
            extra={"GUICHET_HASH_CONCURRENCY": "1", "GUICHET_SHED_DIR": str(shed_dir)},
        )
        server = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log", workers=3).start()
        try:
            member = HttpClient(server.url)
            for _ in range(6):  # warm every worker (first requests load templates, catalogues)
                assert member.get("/login/").status == 200
            login = {"username": "720000001", "password": "not the password"}
            with override_settings(GUICHET_HASH_CONCURRENCY=1, GUICHET_SHED_DIR=str(shed_dir)):
                with hash_slot() as held:
                    assert held
                    started = time.perf_counter()
                    shed = member.submit("/login/", login)
                    shed_seconds = time.perf_counter() - started
                    desk = HttpClient(server.url).get("/desk/login/")
                served = member.submit("/login/", login)
        finally:
            server.stop()
    assert shed.status == 503
    assert shed.headers.get("Retry-After") == "5"
    assert "Trop de demandes en ce moment" in shed.text
    assert shed_seconds < 2.0  # a GET and a POST; no hash ran
    assert desk.status == 200
    assert served.status == 200 and "Trop de demandes" not in served.text
