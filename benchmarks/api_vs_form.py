"""A registration through the API against the same registration through the form, over real HTTP.

    .venv/bin/python benchmarks/api_vs_form.py --per-path 150

Recreates the dedicated database `guichet_api_form_bench` (API_FORM_DATABASE_URL overrides; it
is DROPPED first, and dropped at the end unless --keep), empties the Redis database of
API_FORM_REDIS_URL (default redis://127.0.0.1:6379/12) before and after, seeds a registry, then
starts gunicorn (2 workers x 1 thread, production settings over plain HTTP:
desk.settings_loopback, Argon2id) and submits registrations one at a time, form and API in a
random interleaved order, each with a registry member of its own (names as registered):

  form  GET /register/ (not timed), then POST it with its CSRF and one-time form tokens, as a
        browser does: the POST is timed (its answer is the redirect to the status page).
  api   POST /api/v1/requests/registration, JSON, `Authorization: Bearer` (a token obtained
        once through POST /api/v1/token): timed up to its 202.

No Celery worker runs: the outbox messages wait in the broker, the same for both paths. The
abuse limits are raised for the run (one client IP). Prints p50/p95/p99 of each and the ratio of
the p95s against the issue's target (the API's p95 within 1.2x the form's: both are dominated by
the one Argon2 hash every submission computes). Not a test: the load average is printed beside
the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    add_keep_argument,
    database_recreate,
    dropped_unless_kept,
    use_private_services,
)

PREFIX = "guichet_api_form_bench"
use_private_services(
    database_variable="API_FORM_DATABASE_URL",
    database_default=f"postgres://postgres@127.0.0.1:5432/{PREFIX}",
    redis_variable="API_FORM_REDIS_URL",
    redis_default="redis://127.0.0.1:6379/12",
    settings="desk.settings_loopback",
    secret_key_label="api-form",  # noqa: S106  (names a throwaway key; not a secret)
)

import django  # noqa: E402

TARGET_RATIO = 1.2
LIMITS_RAISED = {
    "GUICHET_SUBMISSIONS_PER_IP_PER_HOUR": "100000000",
    "GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR": "100000000",
    "GUICHET_EMAILS_PER_ADDRESS_PER_HOUR": "100000000",
    "GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE": "100000000",
    "GUICHET_API_CALLS_PER_MINUTE": "100000000",
}
BIRTH = datetime.date(1970, 5, 17)


def seed(count: int) -> list[str]:
    """`count` registry members with a health coverage and no account; their member IDs."""
    from members.models import Coverage, CoverageKind, Member

    members = Member.objects.bulk_create(
        [
            Member(
                member_number=f"{500000000 + n}",
                last_name="Lefèvre",
                first_name="Zoë",
                birth_date=BIRTH,
                email=f"registry{n}@example.org",
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    Coverage.objects.bulk_create(
        [Coverage(member=m, kind=CoverageKind.HEALTH_PRINCIPAL) for m in members],
        batch_size=2000,
    )
    return [m.member_number for m in members]


def api_credentials() -> tuple[str, str]:
    from api.clients import client_create

    credentials = client_create(
        name="bench-api-vs-form", scopes=["requests:write"], calls_per_minute=10**8
    )
    return credentials.client_id, credentials.client_secret


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _post_json(url: str, body: dict[str, Any], token: str) -> tuple[int, float]:
    request = urllib.request.Request(  # noqa: S310  (loopback)
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as raw:  # noqa: S310
            raw.read()
            status = raw.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, time.perf_counter() - started


def token_of(base: str, client_id: str, secret: str) -> str:
    data = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    ).encode()
    request = urllib.request.Request(f"{base}/api/v1/token", data=data, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as raw:  # noqa: S310
        token: str = json.loads(raw.read())["access_token"]
    return token


def submit_form(base: str, member_number: str, n: int) -> tuple[int, float]:
    from tests.integration.harness import HttpClient

    client = HttpClient(base, timeout=60)
    page = client.get("/register/", follow=False)
    if page.status != 200:
        raise SystemExit(f"GET /register/ answered {page.status}")
    values = {
        **page.form("/register/").fields,
        "member_number": member_number,
        "nir": "",
        "last_name": "Lefèvre",
        "first_name": "Zoë",
        "birth_date": BIRTH.strftime("%d/%m/%Y"),
        "email": f"form{n}@example.net",
        "secret_question": "first_pet",
        "secret_answer": f"Caramel {n}",
        "accept_terms": "on",
    }
    started = time.perf_counter()
    posted = client.post("/register/", values, referer=page.url, follow=False)
    return posted.status, time.perf_counter() - started


def submit_api(base: str, token: str, member_number: str, n: int) -> tuple[int, float]:
    return _post_json(
        f"{base}/api/v1/requests/registration",
        {
            "member_number": member_number,
            "last_name": "Lefèvre",
            "first_name": "Zoë",
            "birth_date": BIRTH.isoformat(),
            "email": f"api{n}@example.net",
            "secret_question": "first_pet",
            "secret_answer": f"Caramel {n}",
            "accept_terms": True,
        },
        token,
    )


def start_gunicorn(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "desk.wsgi",
            f"--bind=127.0.0.1:{port}",
            "--workers=2",
            "--threads=1",
            "--timeout=60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run(args: argparse.Namespace) -> None:
    database_recreate(os.environ["DATABASE_URL"], prefix=PREFIX)
    django.setup()
    import redis

    from tests.faults.services import wait_port
    from tests.integration.harness import free_port

    redis_url = os.environ["REDIS_URL"]
    redis.Redis.from_url(redis_url).flushdb()
    total = (args.per_path + args.warmup) * 2
    numbers = seed(total)
    client_id, secret = api_credentials()
    env = {
        **os.environ,
        **LIMITS_RAISED,
        "GUICHET_VAR_DIR": str(ROOT / "var" / "bench" / "api-vs-form-var"),
        "GUICHET_BROKER_CHECK_ON_WORKER_START": "0",
        "EMAIL_URL": "smtp://127.0.0.1:9",  # no worker runs: nothing is sent
        "PYTHONUNBUFFERED": "1",
    }
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    web = start_gunicorn(port, env, ROOT / "var" / "bench" / "api-vs-form-gunicorn.log")
    try:
        wait_port(port, timeout=60)
        token = token_of(base, client_id, secret)
        order = ["form", "api"] * (args.per_path + args.warmup)
        rng = random.Random(14)
        warm = order[: 2 * args.warmup]
        timed = order[2 * args.warmup :]
        rng.shuffle(timed)
        times: dict[str, list[float]] = {"form": [], "api": []}
        loads: list[float] = []
        for n, path in enumerate(warm + timed):
            if path == "form":
                status, elapsed = submit_form(base, numbers[n], n)
                expected = 302
            else:
                status, elapsed = submit_api(base, token, numbers[n], n)
                expected = 202
            if status != expected:
                raise SystemExit(f"{path} submission {n} answered {status}, not {expected}")
            if n >= 2 * args.warmup:
                times[path].append(elapsed * 1000)
                loads.append(os.getloadavg()[0])
    finally:
        stop(web)
        redis.Redis.from_url(redis_url).flushdb()
    print(f"{args.per_path} registrations per path over HTTP (gunicorn 2x1, Argon2id), "
          f"interleaved; load average median {statistics.median(loads):.2f} "
          f"(max {max(loads):.2f}) on {os.cpu_count()} CPUs")  # fmt: skip
    print("| path | n | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|")
    for path, label in (("form", "POST /register/"), ("api", "POST /api/v1/requests/registration")):
        values = times[path]
        print(f"| {label} | {len(values)} | {statistics.median(values):.1f} | "
              f"{percentile(values, 0.95):.1f} | {percentile(values, 0.99):.1f} |")  # fmt: skip
    ratio = percentile(times["api"], 0.95) / percentile(times["form"], 0.95)
    median_ratio = statistics.median(times["api"]) / statistics.median(times["form"])
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"API p95 / form p95: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict}); "
          f"medians {median_ratio:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-path", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one)")
    add_keep_argument(parser)
    args = parser.parse_args()
    with dropped_unless_kept(os.environ["DATABASE_URL"], keep=args.keep, prefix=PREFIX):
        run(args)


if __name__ == "__main__":
    main()
