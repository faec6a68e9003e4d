"""The benchmarks' databases are theirs for one run: dropped at the end unless `--keep`.

A benchmark loads up to millions of rows (several gigabytes); left behind after every run they
fill the disk. Each benchmark script wraps its run in `dropped_unless_kept`, which drops the
database when the run ends — finished, failed or interrupted — unless `--keep` was given (to
measure the same data again, e.g. `benchmarks/desk.py --measure-only`). Only a database whose
name starts with the benchmark's own prefix is ever dropped (docs/benchmarks.md).

Every benchmark reads its database URL from a variable of its own (`use_private_services`, or
scale.py's --database-url), never from DATABASE_URL itself, and refuses a database not named
with its prefix before its first write (`require_benchmark_database`).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

KEEP_HELP = "keep the benchmark database at the end (default: drop it)"


def add_keep_argument(parser: argparse.ArgumentParser) -> None:
    """The `--keep` flag every benchmark takes."""
    parser.add_argument("--keep", action="store_true", help=KEEP_HELP)


def use_private_services(
    *,
    database_variable: str,
    database_default: str,
    redis_variable: str | None = None,
    redis_default: str = "",
    settings: str,
    secret_key_label: str | None = None,
) -> str:
    """Point Django at the benchmark's own database and Redis; the DATABASE_URL it set.

    DATABASE_URL and REDIS_URL are always overwritten, from the benchmark's own variables
    (`database_variable`, e.g. LOAD_DATABASE_URL, else `database_default`; `redis_variable`,
    else `redis_default`, "" meaning no Redis): a DATABASE_URL or REDIS_URL exported for the
    tests is never reused, so a benchmark never drops the test database nor empties its Redis.
    `secret_key_label` names a throwaway SECRET_KEY for settings that have no default of their
    own (desk.settings_loopback; benchmarks.settings has one). LOG_LEVEL defaults to WARNING
    (benchmarks.settings fixes its own levels: no effect there).

    It sets os.environ, so the gunicorn, Celery and manage.py processes started later inherit
    it; call it before Django is set up (the settings read the environment once).
    """
    os.environ["DATABASE_URL"] = os.environ.get(database_variable, database_default)
    os.environ["REDIS_URL"] = (
        os.environ.get(redis_variable, redis_default) if redis_variable else redis_default
    )
    if secret_key_label is not None:
        os.environ.setdefault(
            "SECRET_KEY", f"{secret_key_label}-benchmark-only-not-a-secret-" + "x" * 40
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return os.environ["DATABASE_URL"]


def _name_and_admin_url(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.path.lstrip("/"), parts._replace(path="/postgres").geturl()


def require_benchmark_database(url: str, *, prefix: str) -> None:
    """Exit unless the database of `url` is named `prefix`…, before the benchmark writes to it.

    A benchmark empties (or drops) its database: a mistyped URL, or one pointing at the tests'
    or a developer's database, must stop it before its first write, not only before the drop.
    """
    name, _admin = _name_and_admin_url(url)
    if not name.startswith(prefix):
        raise SystemExit(
            f"refusing database {name!r}: this benchmark empties its database, so it writes only"
            f" to one named {prefix}… (docs/benchmarks.md)"
        )


def database_create_if_missing(url: str) -> bool:
    """Create the database of `url` unless it exists; True if this call created it."""
    import psycopg

    name, admin = _name_and_admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


def database_drop(url: str, *, prefix: str) -> bool:
    """Drop the database of `url` (its sessions closed first); refuse a name without `prefix`."""
    import psycopg

    name, admin = _name_and_admin_url(url)
    if not name.startswith(prefix):
        print(f"not dropping {name!r}: a benchmark drops only databases named {prefix}*",
              file=sys.stderr)  # fmt: skip
        return False
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return True


@contextmanager
def dropped_unless_kept(url: str, *, keep: bool, prefix: str) -> Iterator[None]:
    """Run the benchmark, then drop its database unless `keep` (also after a failure)."""
    name, _admin = _name_and_admin_url(url)
    try:
        yield
    finally:
        if keep:
            print(f"kept database {name} (--keep)", flush=True)
        elif database_drop(url, prefix=prefix):
            print(f"dropped database {name} (--keep keeps it)", flush=True)


def database_recreate(url: str, *, prefix: str) -> None:
    """DROP (sessions closed) and CREATE the benchmark database of `url`, then migrate it.

    Refuses a name without `prefix`, so that a mistyped URL never empties real data.
    """
    import subprocess
    from pathlib import Path

    import psycopg

    require_benchmark_database(url, prefix=prefix)
    name, admin = _name_and_admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
        env=os.environ.copy(),
    )
