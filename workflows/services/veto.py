"""The fraud veto hook: before a risky confirmation is carried out, ask the insurer's fraud engine.

Optional per deployment (`GUICHET_FRAUD_VETO_URL` + `GUICHET_FRAUD_VETO_SECRET`, docs/interfaces.md
"Fraud veto hook"). When it is configured, approving a risky confirmation (tickets.four_eyes: the
only path by which a risky confirmation is carried out) first POSTs a signed request — the
reference, the member ID and the risk reasons, nothing else about the person — and waits at most
TIMEOUT_SECONDS. Only a signed, fresh "allow" answering *this* request lets the approval go on;
"deny", "review", a timeout, a refused target, an error status, a bad signature or bad JSON all
fail closed: nothing is carried out, the ticket stays in `awaiting_approval` for a human look,
and the answer (or the failure) is a history row either way.

The call is never made inside a transaction or while a row is locked: the fraud engine may be
slow, and a held lock would stall every other action on the ticket (and a pool connection) for
that long. `veto_ask` refuses to call from inside an atomic block (fail closed, logged).

Signature: the same scheme as the webhooks (workflows.services.webhooks.webhook_sign), both ways:
`X-Guichet-Timestamp` and `X-Guichet-Signature: v1=HMAC-SHA256(secret, timestamp + "." + body)`.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from tickets.models import Ticket
from workflows.services.webhooks import (
    WebhookError,
    guarded_opener,
    target_check,
    webhook_sign,
)

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
# An answer fresher than this (seconds between its timestamp and our clock) is accepted.
ANSWER_TOLERANCE_SECONDS = 300
MAX_ANSWER_BYTES = 16 * 1024
DECISIONS = ("allow", "deny", "review")


@dataclass(frozen=True)
class VetoAnswer:
    """What the fraud engine said, or why it could not be heard (decision "failed")."""

    decision: str  # allow | deny | review | failed
    detail: str = ""  # for "failed": timeout, unreachable, http_<code>, bad_signature, ...
    reason: str = ""  # the engine's own short reason, if it gave one
    request_id: str = ""
    risks: list[str] = field(default_factory=list)

    @property
    def allows(self) -> bool:
        return self.decision == "allow"

    def history_data(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "detail": self.detail,
            "engine_reason": self.reason,
            "veto_request_id": self.request_id,
            "risks": self.risks,
        }


def veto_enabled() -> bool:
    return bool(settings.GUICHET_FRAUD_VETO_URL)


def veto_request_body(*, ticket: Ticket, request_id: str) -> dict[str, Any]:
    """Reference, member ID, risk reasons: never a name, a NIR, a birth date or an address."""
    member = ticket.member
    return {
        "request_id": request_id,
        "reference": ticket.reference,
        "member_number": member.member_number if member is not None else None,
        "risks": list(ticket.approval_reasons),
        "signals": [str(signal.get("code", "")) for signal in ticket.risk_signals],
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    # A redirect is an answer (a failed one), never followed; the address reached is checked.
    opener = guarded_opener()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status), dict(response.headers), response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as error:
        return int(error.code), {}, b""


def _post_within_deadline(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """`_post`, but the whole exchange (connect, send, a trickled answer) gets TIMEOUT_SECONDS.

    The socket timeout alone bounds each read, not their sum; the thread bounds the sum. A thread
    left behind ends on its own socket timeout.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = _post(url, body, headers)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="fraud-veto-call", daemon=True)
    worker.start()
    worker.join(TIMEOUT_SECONDS)
    if worker.is_alive():
        raise TimeoutError("no answer within the deadline")
    if "error" in outcome:
        raise outcome["error"]
    answer: tuple[int, dict[str, str], bytes] = outcome["answer"]
    return answer


def _header(headers: dict[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def _answer_from(
    *, status: int, headers: dict[str, str], raw: bytes, secret: str, request_id: str
) -> tuple[str, str, str]:
    """(decision, detail, engine reason) from the engine's HTTP answer; fail closed on anything."""
    if not 200 <= status < 300:
        return "failed", f"http_{status}", ""
    timestamp = _header(headers, "X-Guichet-Timestamp")
    given = _header(headers, "X-Guichet-Signature")
    expected = webhook_sign(secret, timestamp, raw)
    try:
        fresh = abs(time.time() - int(timestamp)) <= ANSWER_TOLERANCE_SECONDS
    except ValueError:
        fresh = False
    if not (fresh and hmac.compare_digest(expected, given)):
        return "failed", "bad_signature", ""
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "failed", "bad_json", ""
    if not isinstance(answer, dict) or answer.get("decision") not in DECISIONS:
        return "failed", "bad_json", ""
    if answer.get("request_id") != request_id:  # an old "allow" replayed for another request
        return "failed", "stale_answer", ""
    reason = answer.get("reason", "")
    return str(answer["decision"]), "", str(reason)[:200] if isinstance(reason, str) else ""


def veto_ask(*, ticket: Ticket) -> VetoAnswer:
    """Ask the fraud engine about carrying out this risky confirmation (no lock, no transaction)."""
    request_id = secrets.token_urlsafe(16)
    risks = list(ticket.approval_reasons)

    def failed(detail: str) -> VetoAnswer:
        logger.warning(
            "fraud veto failed closed ticket=%s request_id=%s detail=%s",
            ticket.reference,
            request_id,
            detail,
        )
        return VetoAnswer("failed", detail=detail, request_id=request_id, risks=risks)

    if transaction.get_connection().in_atomic_block:
        # A caller inside a transaction would hold its locks for the whole call (module doc).
        return failed("asked_inside_a_transaction")
    url = settings.GUICHET_FRAUD_VETO_URL
    secret = settings.GUICHET_FRAUD_VETO_SECRET
    body = json.dumps(
        veto_request_body(ticket=ticket, request_id=request_id),
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Guichet-Veto/1",
        "X-Guichet-Request-Id": request_id,
        "X-Guichet-Timestamp": timestamp,
        "X-Guichet-Signature": webhook_sign(secret, timestamp, body),
    }
    try:
        target_check(url)
    except WebhookError:
        return failed("refused_target")
    try:
        status, answer_headers, raw = _post_within_deadline(url, body, headers)
    except TimeoutError:
        return failed("timeout")
    except (OSError, ValueError) as exc:
        return failed(f"unreachable: {type(exc).__name__}"[:64])
    decision, detail, reason = _answer_from(
        status=status, headers=answer_headers, raw=raw, secret=secret, request_id=request_id
    )
    if decision == "failed":
        return failed(detail)
    logger.info(
        "fraud veto answered ticket=%s request_id=%s decision=%s",
        ticket.reference,
        request_id,
        decision,
    )
    return VetoAnswer(decision, reason=reason, request_id=request_id, risks=risks)
