"""Benchmarks drop the databases they loaded unless `--keep` is given (docs/benchmarks.md).

Every script in benchmarks/ with a `main()` takes `--keep` and runs inside
`benchmarks.databases.dropped_unless_kept`, which drops the database at the end — after a
finished run, a failed one, or an interrupted one — and only a database named with the
benchmark's prefix. The drop itself is proved on PostgreSQL (skipped elsewhere, failed under
CI=true).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from benchmarks.databases import database_create_if_missing, dropped_unless_kept

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    path
    for path in (ROOT / "benchmarks").glob("*.py")
    if any(
        isinstance(node, ast.FunctionDef) and node.name == "main"
        for node in ast.parse(path.read_text()).body
    )
)


def test_there_are_benchmark_scripts() -> None:
    assert {path.stem for path in SCRIPTS} >= {"desk", "supervisor", "load", "equal_work"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_every_benchmark_takes_keep_and_runs_inside_the_drop(script: Path) -> None:
    source = script.read_text()
    assert "dropped_unless_kept(" in source and "add_keep_argument(parser)" in source
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/guichet_bench_help"}
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    shown = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "--keep" in shown.stdout


def _postgresql_url(name: str) -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        reason = "the drop is proved on PostgreSQL: set DATABASE_URL to PostgreSQL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
        pytest.skip(reason)
    user = urllib.parse.quote(db["USER"] or "")
    password = f":{urllib.parse.quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _exists(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [parts.path.lstrip("/")]
        ).fetchone()
    return row is not None


@pytest.mark.integration
def test_the_database_is_dropped_after_the_run_and_after_a_failure_kept_with_keep() -> None:
    url = _postgresql_url(f"guichet_bench_cleanup_{os.getpid()}")
    assert database_create_if_missing(url) is True
    with dropped_unless_kept(url, keep=False, prefix="guichet_bench"):
        assert _exists(url)
    assert not _exists(url)

    database_create_if_missing(url)
    with pytest.raises(RuntimeError), dropped_unless_kept(url, keep=False, prefix="guichet_bench"):
        raise RuntimeError("the benchmark failed half-way")
    assert not _exists(url)

    database_create_if_missing(url)
    try:
        with dropped_unless_kept(url, keep=True, prefix="guichet_bench"):
            pass
        assert _exists(url)
        assert database_create_if_missing(url) is False
    finally:
        with dropped_unless_kept(url, keep=False, prefix="guichet_bench"):
            pass
    assert not _exists(url)


@pytest.mark.integration
def test_a_database_without_the_benchmark_prefix_is_never_dropped() -> None:
    url = _postgresql_url(f"guichet_precious_{os.getpid()}")
    database_create_if_missing(url)
    try:
        with dropped_unless_kept(url, keep=False, prefix="guichet_bench"):
            pass
        assert _exists(url)
    finally:
        with dropped_unless_kept(url, keep=False, prefix="guichet_precious"):
            pass
    assert not _exists(url)
