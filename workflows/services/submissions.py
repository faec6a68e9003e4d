"""Double-submitted public forms give one request (docs/security.md §25): one-time form tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.throttling import EmailBudget, submission_identifier_exceeded
from workflows.models import FormSubmission
from workflows.services.intake import RequestData, request_intake

FORM_TOKEN_TTL = timedelta(days=2)


def form_token_new() -> str:
    """A fresh token for one rendering of a public form (256 bits from `secrets`)."""
    return secrets.token_urlsafe(32)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def submission_once(*, token: str, submit: Callable[[], str]) -> tuple[str, bool]:
    """Run `submit` (which returns a reference) once per token; `(reference, replayed)`.

    The token's hash is inserted in the same transaction as the request, under a unique
    constraint: a concurrent second POST waits for the first to commit, then finds its row and
    gets its reference. Without a token (old page, script) every POST is a new request.
    """
    if not token:
        return submit(), False
    digest = _digest(token)
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = FormSubmission.objects.create(token_hash=digest)
        except IntegrityError:
            first = FormSubmission.objects.filter(token_hash=digest).only("reference").first()
            return (first.reference if first is not None else ""), True
        reference = submit()
        row.reference = reference
        row.save(update_fields=["reference"])
    return reference, False


def form_submissions_purge(*, now: object = None) -> int:
    """Forget tokens older than FORM_TOKEN_TTL (a page left open longer is simply new)."""
    cutoff = (now or timezone.now()) - FORM_TOKEN_TTL  # type: ignore[operator]
    deleted, _ = FormSubmission.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def public_request_submit(*, data: RequestData, token: str, request_id: str = "") -> str | None:
    """The shared tail of every public request, form or API: limits, intake once, the reference.

    The per-identifier limit counts before any registry lookup, so it trips after the same count
    whatever the registry holds (None: answer the one "too many requests"); a spent per-address
    e-mail budget changes nothing visible: the request is stored, only the e-mail is skipped.
    The budget unit is taken only by the submission that really stores the request (not a
    replay), and given back if that submission rolls back.
    """
    if submission_identifier_exceeded(data.member_number or data.nir):
        return None
    budget = EmailBudget(data.email)

    def submit() -> str:
        return request_intake(data=data, request_id=request_id, acknowledge=budget.take()).reference

    try:
        reference, _replayed = submission_once(token=token, submit=submit)
    except BaseException:
        budget.refund()  # rolled back: nothing was sent, its replay will pay
        raise
    return reference
