"""Benchmarks drop the databases they loaded unless `--keep` is given (docs/benchmarks.md).

Every script in benchmarks/ with a `main()` takes `--keep` and runs inside
`benchmarks.databases.dropped_unless_kept`, which drops the database at the end — after a
finished run, a failed one, or an interrupted one — and only a database named with the
benchmark's prefix. The drop itself is proved on PostgreSQL (skipped elsewhere, failed under
CI=true).

They never write to the database of an exported DATABASE_URL (the tests'): each takes its own
variable (`use_private_services`) and refuses, before its first write, a database not named with
its prefix (`require_benchmark_database`).
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

from benchmarks.databases import (
    database_create_if_missing,
    dropped_unless_kept,
    require_benchmark_database,
    use_private_services,
)

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


def test_use_private_services_overwrites_an_exported_database_url_and_redis_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE", "LOG_LEVEL", "BENCH_TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/guichet")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    default = "postgres://postgres@127.0.0.1:5432/guichet_bench"

    url = use_private_services(
        database_variable="BENCH_TEST_DATABASE_URL",
        database_default=default,
        settings="benchmarks.settings",
    )
    assert url == os.environ["DATABASE_URL"] == default
    assert os.environ["REDIS_URL"] == ""

    own = "postgres://postgres@127.0.0.1:5432/guichet_bench_own"
    monkeypatch.setenv("BENCH_TEST_DATABASE_URL", own)
    use_private_services(
        database_variable="BENCH_TEST_DATABASE_URL",
        database_default=default,
        settings="benchmarks.settings",
    )
    assert os.environ["DATABASE_URL"] == own


@pytest.mark.parametrize(
    "name", ["guichet", "guichet_not_a_bench", "", "postgres", "xguichet_bench"]
)
def test_a_database_without_the_prefix_is_refused_before_any_write(name: str) -> None:
    with pytest.raises(SystemExit, match="refusing database") as refused:
        require_benchmark_database(
            f"postgres://postgres@127.0.0.1:5432/{name}", prefix="guichet_bench"
        )
    assert repr(name) in str(refused.value)


@pytest.mark.parametrize("name", ["guichet_bench", "guichet_bench5", "guichet_bench_purge"])
def test_a_database_with_the_prefix_is_accepted(name: str) -> None:
    require_benchmark_database(f"postgres://postgres@127.0.0.1:5432/{name}", prefix="guichet_bench")


# (script, its own variable, a database name its guard accepts, its smallest run): the smallest
# run bounds what a script without the guard would do before the test fails.
GUARDED = [
    ("desk", "DESK_BENCH_DATABASE_URL", "guichet_bench",
     ["--sizes", "10", "--members", "10", "--repeat", "2", "--warmup", "0"]),
    ("indexes", "INDEXES_BENCH_DATABASE_URL", "guichet_bench",
     ["--tickets", "10", "--members", "10"]),
    ("supervisor", "SUPERVISOR_BENCH_DATABASE_URL", "guichet_bench",
     ["--sizes", "10", "--repeat", "1"]),
    ("purge", "PURGE_BENCH_DATABASE_URL", "guichet_bench",
     ["--rows", "10", "--sessions", "1", "--idle-requests", "2"]),
    ("risk_intake", "RISK_BENCH_DATABASE_URL", "guichet_bench_risk",
     ["--members", "10", "--traces", "10", "--runs", "2"]),
    ("import_members", "IMPORT_BENCH_DATABASE_URL", "guichet_import_bench", ["--members", "10"]),
]  # fmt: skip


def _drop_if_exists(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


@pytest.mark.integration
@pytest.mark.parametrize(("script", "variable", "accepted", "smallest"), GUARDED,
                         ids=[g[0] for g in GUARDED])  # fmt: skip
def test_a_benchmark_ignores_an_exported_database_url_and_refuses_a_foreign_name(
    script: str, variable: str, accepted: str, smallest: list[str]
) -> None:
    # The exported DATABASE_URL is one the guard would accept: a script that read it would run
    # there instead of refusing the foreign name its own variable gives.
    exported = _postgresql_url(f"{accepted}_exported_{os.getpid()}")
    foreign = _postgresql_url(f"guichet_not_a_bench_{os.getpid()}")
    env = {**os.environ, "DATABASE_URL": exported, variable: foreign}
    try:
        refused = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *smallest],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert refused.returncode != 0
        assert f"refusing database 'guichet_not_a_bench_{os.getpid()}'" in refused.stderr, (
            refused.stderr[-2000:]
        )
        assert not _exists(foreign)
        assert not _exists(exported)
    finally:
        _drop_if_exists(foreign)
        _drop_if_exists(exported)
