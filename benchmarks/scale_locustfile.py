"""The users of `benchmarks/scale.py`, run by locust in a process of its own (no Django here).

`benchmarks/scale.py` starts `locust -f benchmarks/scale_locustfile.py --headless …` once per
phase and configures it through the environment:

- `SCALE_HOSTS`: the gunicorn instances, comma-separated; each user is given one in turn (the
  round-robin "load balancer": a user keeps its instance, as a sticky balancer would).
- `SCALE_MEMBER_RATE_PER_USER`: submissions per second of one member user
  (`constant_throughput`), or `0` for a closed loop (no wait: the capacity probes).
- `SCALE_AGENTS`, `SCALE_AGENT_PREFIX`, `SCALE_AGENT_PASSWORD`, `SCALE_TOTP_SECRET`,
  `SCALE_AGENT_PACING`: the desk agents (a fixed count), logged in with a TOTP code, who read the
  queue and a ticket and decide it every `SCALE_AGENT_PACING` seconds (`constant_pacing`).
- `SCALE_IDENTITIES`: a JSON file of registry identities to submit.
- `SCALE_OUT`: where every request (name, status, milliseconds, shed or not, time), every
  accepted submission's reference and every decision posted are written at the end.

Member users register (60%) or recover their codes (40%): GET the form, POST it as a browser
does (CSRF token and one-time form token from the page, Origin and Referer). A 302 to
/requests/<reference>/ is an accepted submission; a 503 with Retry-After is a shed one.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import urllib.parse
from typing import Any

from locust import HttpUser, constant, constant_pacing, constant_throughput, events, task

from benchmarks.scale_browser import hidden_fields, totp

HOSTS = [h for h in os.environ.get("SCALE_HOSTS", "").split(",") if h]
RATE_PER_USER = float(os.environ.get("SCALE_MEMBER_RATE_PER_USER", "0.25"))
AGENTS = int(os.environ.get("SCALE_AGENTS", "0"))
AGENT_PREFIX = os.environ.get("SCALE_AGENT_PREFIX", "scale-agent")
AGENT_PASSWORD = os.environ.get("SCALE_AGENT_PASSWORD", "")
TOTP_SECRET = os.environ.get("SCALE_TOTP_SECRET", "")
AGENT_PACING = float(os.environ.get("SCALE_AGENT_PACING", "2"))
OUT = os.environ.get("SCALE_OUT", "scale-phase.json")
IDENTITIES: list[dict[str, str]] = (
    json.loads(open(os.environ["SCALE_IDENTITIES"], encoding="utf-8").read())  # noqa: SIM115
    if os.environ.get("SCALE_IDENTITIES")
    else []
)

REFERENCE = re.compile(r"/requests/([A-Z]{3}-[0-9A-HJKMNP-TV-Z]{8})/")
DESK_REF = re.compile(r"/desk/tickets/([A-Z]{3}-[0-9A-HJKMNP-TV-Z]{8})/")
REASON = re.compile(
    r'<select name="reason" id="reject-reason"[^>]*>.*?<option value="([a-z_]+)"', re.S
)

_host_turn = itertools.count()
_agent_turn = itertools.count()
RECORD: dict[str, list[Any]] = {"requests": [], "accepted": [], "decisions": [], "errors": []}


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: Any = None,
    **_: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    shed = status == 503 and "Retry-After" in getattr(response, "headers", {})
    RECORD["requests"].append([name, status, round(response_time, 2), shed, time.time()])
    if exception is not None and status == 0:
        RECORD["errors"].append(f"{name}: {type(exception).__name__}")
    elif status >= 400 and not shed and len(RECORD["errors"]) < 50:
        body = getattr(response, "text", "")[:300].replace("\n", " ")
        RECORD["errors"].append(f"{name}: {status} {body}")


@events.test_stop.add_listener
def _dump(**_: Any) -> None:
    with open(OUT, "w", encoding="utf-8") as out:
        json.dump(RECORD, out)


class _Browser(HttpUser):
    abstract = True

    def on_start(self) -> None:
        if HOSTS:
            self.client.base_url = HOSTS[next(_host_turn) % len(HOSTS)]
        self.client.headers["Accept-Language"] = "fr"

    def go(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; then the session's cookies are sent over plain HTTP as browsers do for
        http://127.0.0.1 (requests, unlike them, would keep the Secure `__Host-` ones back)."""
        response = self.client.request(method, path, **kwargs)
        for cookie in self.client.cookies:
            cookie.secure = False
        return response

    def post_form(self, path: str, page: Any, data: dict[str, str], name: str) -> Any:
        base = self.client.base_url
        values = {**hidden_fields(page.text, path), **data}
        return self.go(
            "POST",
            path,
            data=values,
            headers={"Origin": base, "Referer": base + path},
            allow_redirects=False,
            name=name,
        )


class MemberUser(_Browser):
    """A member registering or asking for forgotten codes, at a fixed pace."""

    wait_time = constant_throughput(RATE_PER_USER) if RATE_PER_USER > 0 else constant(0)

    @task
    def submit(self) -> None:
        rng = random.Random()
        person = dict(rng.choice(IDENTITIES)) if IDENTITIES else {}
        seq = f"{os.getpid()}-{time.monotonic_ns()}"
        address = f"scale-{seq}@example.net"
        if rng.random() < 0.6:
            path, kind = "/register/", "registration"
            data = {
                **person,
                "nir": "",
                "email": address,
                "secret_question": "first_pet",
                "secret_answer": f"Caramel {seq}",
                "accept_terms": "on",
            }
        else:
            path, kind = "/recover/", "recovery"
            data = {**person, "nir": "", "email": address}
        page = self.go("GET", path, name=f"GET {path}")
        if page.status_code != 200:
            return
        posted = self.post_form(path, page, data, f"POST {path}")
        match = REFERENCE.search(posted.headers.get("Location", ""))
        if posted.status_code == 302 and match:
            RECORD["accepted"].append([match.group(1), kind, time.time()])


class AgentUser(_Browser):
    """A desk agent: logs in (password, then TOTP), reads the queue and a ticket, decides it."""

    fixed_count = AGENTS
    wait_time = constant_pacing(AGENT_PACING)

    def on_start(self) -> None:
        super().on_start()
        self.ready = False
        self.tried: set[str] = set()
        username = f"{AGENT_PREFIX}-{next(_agent_turn)}"
        page = self.go("GET", "/desk/login/", name="GET /desk/login/")
        step = self.post_form(
            "/desk/login/",
            page,
            {"username": username, "password": AGENT_PASSWORD},
            "POST /desk/login/",
        )
        location = urllib.parse.urljoin(self.client.base_url, step.headers.get("Location", ""))
        path = urllib.parse.urlsplit(location).path
        if path.endswith("/desk/second-factor/"):
            form = self.go("GET", path, name="GET /desk/second-factor/")
            done = self.post_form(
                path, form, {"otp_token": totp(TOTP_SECRET)}, "POST /desk/second-factor/"
            )
            path = urllib.parse.urlsplit(done.headers.get("Location", "")).path
        self.ready = path == "/desk/"
        if not self.ready:
            RECORD["errors"].append(f"{username} could not log in (landed on {path!r})")

    @task
    def read_and_decide(self) -> None:
        if not self.ready:
            return
        queue = self.go("GET", "/desk/", name="GET /desk/", allow_redirects=False)
        refs = DESK_REF.findall(queue.text) if queue.status_code == 200 else []
        refs = [r for r in dict.fromkeys(refs) if r not in self.tried]
        if not refs:
            return
        ref = random.choice(refs[:10])
        self.tried.add(ref)
        path = f"/desk/tickets/{ref}/"
        page = self.go("GET", path, name="GET /desk/tickets/<ref>/", allow_redirects=False)
        if page.status_code != 200:
            return
        # Registrations are confirmed; recoveries (mostly members without an account in this
        # registry) are rejected. Either way a decision, hence one e-mail.
        action = "confirm" if ref.startswith("REG-") and f"{path}confirm/" in page.text else ""
        action = action or ("reject" if f"{path}reject/" in page.text else "")
        if not action:
            return
        data = {}
        if action == "reject":
            reasons = REASON.findall(page.text)
            data["reason"] = reasons[0] if reasons else "other"
        target = f"{path}{action}/"
        values = {**hidden_fields(page.text, target), **data}
        base = self.client.base_url
        done = self.go(
            "POST",
            target,
            data=values,
            headers={"Origin": base, "Referer": base + path},
            allow_redirects=False,
            name=f"POST /desk/tickets/<ref>/{action}/",
        )
        RECORD["decisions"].append([ref, action, done.status_code, time.time()])
