"""Refresh the README's screenshots from a seeded local server (Playwright + Debian's chromium).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--port 8765]

Starts `manage.py runserver` on a throw-away SQLite database, seeds the demo data, sends a
registration with a typo in the last name (so the agent's page shows a highlighted difference),
then photographs the member's registration page, the agent's ticket page and the supervisors'
page. Nothing outside 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

# A fresh staff password per run: the throw-away database is deleted afterwards anyway.
STAFF_PASSWORD = secrets.token_urlsafe(16)


def manage(env: dict[str, str], *args: str) -> None:
    """Run one manage.py command in the throw-away environment."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def wait_until_up(base_url: str, timeout: float = 30) -> None:
    """Poll /healthz until the development server answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise SystemExit(f"the server at {base_url} did not start")


def demo_code(env: dict[str, str]) -> str:
    """The demo staff's current second-factor code, as the README's tour gets it."""
    done = subprocess.run(
        [sys.executable, "manage.py", "demo_totp"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def desk_login(page: Any, base_url: str, username: str, env: dict[str, str]) -> None:
    """Log in through the desk's own forms: the password, then the second factor."""
    page.goto(f"{base_url}/desk/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/desk/second-factor/**")
    page.fill("#id_otp_token", demo_code(env))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def take(base_url: str, out: Path, language: str, env: dict[str, str]) -> list[str]:
    """Photograph the three pages; return what could not be taken and why."""
    from playwright.sync_api import sync_playwright

    missing: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        locale = {"fr": "fr-FR", "en": "en-GB"}[language]
        member = browser.new_context(locale=locale, viewport={"width": 1100, "height": 900})
        page = member.new_page()
        page.goto(f"{base_url}/register/")
        page.fill("#id_member_number", "100200300")
        page.fill("#id_last_name", "Martine")  # a typo: the desk will show the difference
        page.fill("#id_first_name", "Zoë")
        page.fill("#id_birth_date", "12/04/1980")
        page.fill("#id_email", "zoe.martin@example.org")
        page.select_option("#id_secret_question", "first_pet")
        page.fill("#id_secret_answer", "Caramel")
        page.check("#id_accept_terms")
        page.screenshot(path=str(out / "registration.png"), full_page=True)
        page.locator("main form button[type=submit]").click()
        page.wait_for_url("**/requests/**")
        reference = page.locator(".reference").inner_text().strip()

        staff = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        page = staff.new_page()
        desk_login(page, base_url, "agent", env)
        page.goto(f"{base_url}/desk/tickets/{reference}/")
        page.screenshot(path=str(out / "desk-ticket.png"), full_page=True)

        supervisor = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        page = supervisor.new_page()
        desk_login(page, base_url, "supervisor", env)
        response = page.goto(f"{base_url}/desk/supervisor/")
        if response is not None and response.status == 200:
            page.screenshot(path=str(out / "supervisor.png"), full_page=True)
        else:
            missing.append(
                f"supervisor.png: /desk/supervisor/ answered {response and response.status}"
            )
        browser.close()
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--language", choices=["fr", "en"], default="fr")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory(prefix="guichet-screens-") as var_dir:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "DEBUG": "1",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "GUICHET_VAR_DIR": var_dir,
            "EMAIL_URL": "consolemail://",
        }
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "seed_demo", "--password", STAFF_PASSWORD)
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(base_url)
            missing = take(base_url, out, args.language, env)
        finally:
            server.terminate()
            server.wait(timeout=10)
    for line in missing:
        print(f"not taken: {line}", file=sys.stderr)
    print(f"screenshots written to {out}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
