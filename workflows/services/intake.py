"""Intake: a request (from a member, or an agent on their behalf) becomes a checked ticket."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account
from members.names import normalise_name
from members.secret_answers import secret_answer_hash, secret_answer_matches
from members.throttling import login_failure_record
from tickets.models import (
    OPEN_STATES,
    Channel,
    EventKind,
    Ticket,
    TicketKind,
    TicketState,
    new_reference,
)
from tickets.services import event_record, ticket_transition
from workflows import risk
from workflows.models import EmailTemplate, IntakeTrace, RequestAlias
from workflows.services.matching import NO_ROW, RegistryCheck, registry_check
from workflows.services.outbox import outbox_enqueue


@dataclass(frozen=True)
class RequestData:
    """What a request carries, already validated by a form."""

    kind: str
    last_name: str
    first_name: str
    birth_date: datetime.date | None
    email: str
    member_number: str = ""
    nir: str = ""
    secret_question: str = ""
    secret_answer: str = ""
    requested_email: str = ""
    message: str = ""
    language: str = "fr"
    channel: str = Channel.WEB
    # Support form: which of the listed problems the member picked (kept in the history).
    topic: str = ""
    # The submitting client's address (public forms only), for the network signal; only a keyed
    # hash of its /24 (/64) is stored (workflows/risk.py).
    client_ip: str = ""

    IDENTITY_FIELDS = ("member_number", "nir", "last_name", "first_name", "birth_date", "email")

    @classmethod
    def from_identity(cls, cleaned: dict[str, Any], **specific: Any) -> RequestData:
        """The identity fields every request form carries, plus what is specific to its kind."""
        return cls(**{name: cleaned[name] for name in cls.IDENTITY_FIELDS}, **specific)


@dataclass(frozen=True)
class Intake:
    """What a submission became: the ticket, and the reference to show whoever submitted it."""

    ticket: Ticket
    reference: str
    attached: bool = False


@sensitive_variables("data")
@transaction.atomic
def request_intake(
    *,
    data: RequestData,
    actor: Account | None = None,
    request_id: str = "",
    acknowledge: bool = True,
) -> Intake:
    """Store the request (or attach it to the member's open one), queue the neutral e-mail.

    Every outcome of the check does the same work (queries, one hash, one e-mail), so nothing the
    member sees or waits for tells whether the person is in the registry (docs/security.md §1-2).
    A repeat request gets a fresh reference of its own (an alias), never the open ticket's.
    `acknowledge=False` (the recipient's hourly e-mail budget is spent) skips only the e-mail.
    """
    check = registry_check(
        kind=data.kind,
        member_number=data.member_number,
        nir=data.nir,
        last_name=data.last_name,
        first_name=data.first_name,
        birth_date=data.birth_date,
    )
    # Exactly one hash on every path: registration hashes the new answer; the other kinds check
    # the typed answer (possibly empty) against the account's hash, or a dummy when there is none.
    answer_hash = ""
    answer_ok = False
    if data.kind == TicketKind.REGISTRATION:
        answer_hash = secret_answer_hash(data.secret_answer)
    else:
        stored = check.account.secret_answer_hash if check.account is not None else ""
        answer_ok = secret_answer_matches(data.secret_answer, stored)
    open_ticket, related = _open_tickets_for(check, data.kind)
    submission = _risk_submission(data, check, open_ticket, answer_ok)
    evidence = risk.evidence_gather(submission, now=timezone.now())
    assessment = risk.risk_assess(evidence)
    if open_ticket is not None:
        ticket, reference = _attach(
            ticket=open_ticket,
            data=data,
            check=check,
            actor=actor,
            request_id=request_id,
            acknowledge=acknowledge,
            assessment=assessment,
        )
    else:
        ticket = _create(
            data=data,
            check=check,
            answer_hash=answer_hash,
            actor=actor,
            request_id=request_id,
            acknowledge=acknowledge,
            assessment=assessment,
        )
        reference = ticket.reference
    IntakeTrace.objects.create(
        ticket=ticket,
        member=check.member,
        identity_key=submission.identity,
        email_key=risk.email_key(data.email),
        network_key=submission.network,
    )
    # A related request arrived: the member's other open tickets see it in their signals.
    if evidence.other_requests_for_member > 0:
        for other in related:
            ticket_risk_refresh(ticket=other, request_id=request_id)
    if data.kind == TicketKind.RECOVERY and data.requested_email:
        _secret_answer_outcome(
            ticket=ticket, data=data, check=check, answer_ok=answer_ok, request_id=request_id
        )
    if acknowledge:
        outbox_enqueue(
            template=EmailTemplate.ACKNOWLEDGMENT,
            recipient=data.email,
            language=data.language,
            ticket=ticket,
            # This submission's own reference and typed name: an attached repeat request must
            # not be answered with the open ticket's reference or name (no oracle).
            context={
                "reference": reference,
                "typed_name": f"{data.first_name} {data.last_name}".strip(),
            },
        )
    return Intake(ticket=ticket, reference=reference, attached=open_ticket is not None)


def intake_traces_purge(*, now: datetime.datetime | None = None) -> int:
    """Delete the traces older than `risk.TRACE_DAYS`: past every signal's window."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=risk.TRACE_DAYS)
    deleted, _ = IntakeTrace.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _risk_submission(
    data: RequestData, check: RegistryCheck, open_ticket: Ticket | None, answer_ok: bool
) -> risk.Submission:
    """This request as the takeover signals see it (failures: this try's included)."""
    failures = open_ticket.secret_answer_failures if open_ticket is not None else 0
    tries_left = failures < settings.GUICHET_SECRET_ANSWER_MAX_TRIES
    answered = data.kind == TicketKind.RECOVERY and bool(data.requested_email)
    if answered and tries_left and not (answer_ok and check.account is not None):
        failures += 1
    member_pk = check.member.pk if check.member is not None else None
    return risk.Submission(
        kind=data.kind,
        typed_email=data.email,
        requested_email=data.requested_email,
        member_pk=member_pk,
        account=check.account,
        identity=risk.identity_key(
            member_pk=member_pk,
            last_name_key=normalise_name(data.last_name),
            first_name_key=normalise_name(data.first_name),
            birth=data.birth_date,
        ),
        network=risk.network_key(data.client_ip),
        secret_answer_failures=failures,
    )


def _risk_fields(assessment: risk.Assessment) -> dict[str, Any]:
    return {
        "risk_level": assessment.level,
        "risk_score": assessment.score,
        "risk_signals": assessment.signals,
    }


def _risk_summary(assessment: risk.Assessment) -> dict[str, Any]:
    return {"level": assessment.level, "score": assessment.score, "signals": assessment.codes}


# Signals an intake re-assessment cannot see again (set by another path): a ticket carrying one
# keeps its assessment. "This was not me" opens a high-risk ticket that only four-eyes may
# confirm (it unfreezes the account); later requests must not lower it.
STICKY_SIGNALS = frozenset({"member_reported_not_me"})


def ticket_risk_refresh(*, ticket: Ticket, request_id: str = "") -> bool:
    """Re-assess a stored (locked) open ticket; save and record it when the result changed."""
    if any(signal.get("code") in STICKY_SIGNALS for signal in ticket.risk_signals):
        return False
    member_pk = ticket.member_id
    account = Account.objects.filter(member_id=member_pk).first() if member_pk else None
    first_trace = IntakeTrace.objects.filter(ticket=ticket).order_by("created_at", "id").first()
    own = IntakeTrace.objects.filter(ticket=ticket).count()
    submission = risk.Submission(
        kind=ticket.kind,
        typed_email=ticket.submitted_email,
        requested_email=ticket.requested_email,
        member_pk=member_pk,
        account=account,
        identity=risk.identity_key(
            member_pk=member_pk,
            last_name_key=ticket.last_name_key,
            first_name_key=ticket.first_name_key,
            birth=ticket.submitted_birth_date,
        ),
        network=first_trace.network_key if first_trace is not None else "",
        secret_answer_failures=ticket.secret_answer_failures,
    )
    assessment = risk.risk_assess(
        risk.evidence_gather(submission, now=timezone.now(), own_requests=own)
    )
    if assessment.signals == ticket.risk_signals and assessment.level == ticket.risk_level:
        return False
    previous = ticket.risk_level
    for name, value in _risk_fields(assessment).items():
        setattr(ticket, name, value)
    ticket.save(update_fields=list(_risk_fields(assessment)))
    event_record(
        ticket=ticket,
        kind=EventKind.RISK,
        from_state=ticket.state,
        to_state=ticket.state,
        reason=assessment.level,
        data={"previous_level": previous, **_risk_summary(assessment)},
        request_id=request_id,
    )
    return True


# A member has a handful of open tickets at most (one per kind); more are not refreshed.
RELATED_OPEN_MAX = 20


def _open_tickets_for(check: RegistryCheck, kind: str) -> tuple[Ticket | None, list[Ticket]]:
    """The member's open ticket of this kind, and their other open tickets, locked in arrival
    order (so concurrent requests for one member cannot deadlock); one query, the same one
    when no member was found (ticket_member_kind_idx)."""
    member_pk = check.member.pk if check.member is not None else NO_ROW
    tickets: list[Ticket] = list(
        Ticket.objects.select_for_update()
        .filter(member_id=member_pk, state__in=OPEN_STATES)
        .order_by("created_at", "id")[:RELATED_OPEN_MAX]
    )
    same_kind = next((t for t in tickets if t.kind == kind), None)
    return same_kind, [t for t in tickets if t is not same_kind]


def _intake_data(
    data: RequestData, check: RegistryCheck, acknowledge: bool, assessment: risk.Assessment
) -> dict[str, Any]:
    extra: dict[str, Any] = {"match_result": check.result, "risk": _risk_summary(assessment)}
    if data.topic:
        extra["topic"] = data.topic
    if not acknowledge:
        extra["acknowledgment"] = "skipped_address_limit"
    return extra


def _create(
    *,
    data: RequestData,
    check: RegistryCheck,
    answer_hash: str,
    actor: Account | None,
    request_id: str,
    acknowledge: bool,
    assessment: risk.Assessment,
) -> Ticket:
    ticket: Ticket = Ticket(
        kind=data.kind,
        channel=data.channel,
        language=data.language,
        submitted_member_number=data.member_number,
        submitted_nir=data.nir,
        submitted_last_name=data.last_name,
        submitted_first_name=data.first_name,
        submitted_birth_date=data.birth_date,
        submitted_email=data.email,
        requested_email=data.requested_email,
        secret_question=data.secret_question,
        secret_answer_hash=answer_hash,
        message=data.message,
        member=check.member,
        match_result=check.result,
        match_details=check.details,
        created_by=actor if actor is not None and actor.is_staff else None,
        **_risk_fields(assessment),
    )
    ticket.save()
    event_record(
        ticket=ticket,
        kind=EventKind.CREATED,
        actor=actor,
        to_state=ticket.state,
        reason=data.channel,
        data=_intake_data(data, check, acknowledge, assessment),
        request_id=request_id,
    )
    ticket_transition(
        ticket=ticket,
        transition_name=(
            "pass_registry_check" if check.is_clean_match else "flag_mismatch_at_intake"
        ),
        actor=None,
        reason=check.result,
        request_id=request_id,
    )
    return ticket


def _attach(
    *,
    ticket: Ticket,
    data: RequestData,
    check: RegistryCheck,
    actor: Account | None,
    request_id: str,
    acknowledge: bool,
    assessment: risk.Assessment,
) -> tuple[Ticket, str]:
    """Record a repeat request in the open ticket's history under a fresh alias reference."""
    alias = RequestAlias.objects.create(
        reference=new_reference(data.kind), ticket=ticket, channel=data.channel
    )
    extra = _intake_data(data, check, acknowledge, assessment)
    extra.update(
        {
            "alias": alias.reference,
            "submitted": {
                "last_name": data.last_name,
                "first_name": data.first_name,
                "birth_date": data.birth_date.isoformat() if data.birth_date else "",
                "email": data.email,
                "requested_email": data.requested_email,
            },
            "comparison": check.details.get("comparison", {}),
        }
    )
    event_record(
        ticket=ticket,
        kind=EventKind.ATTACHED,
        actor=actor,
        from_state=ticket.state,
        to_state=ticket.state,
        reason=data.channel,
        body=data.message,
        data=extra,
        request_id=request_id,
    )
    # The open ticket carries the strongest signals among its requests (the history keeps each).
    if assessment.score > ticket.risk_score:
        for name, value in _risk_fields(assessment).items():
            setattr(ticket, name, value)
        ticket.save(update_fields=list(_risk_fields(assessment)))
    return ticket, alias.reference


def _secret_answer_outcome(
    *,
    ticket: Ticket,
    data: RequestData,
    check: RegistryCheck,
    answer_ok: bool,
    request_id: str,
) -> None:
    """Count the try on the request; after the last one the self-service change is closed."""
    max_tries = settings.GUICHET_SECRET_ANSWER_MAX_TRIES
    if ticket.secret_answer_failures >= max_tries:
        event_record(
            ticket=ticket, kind=EventKind.SECRET_ANSWER, reason="closed", request_id=request_id
        )
        return
    account = check.account
    if answer_ok and account is not None:
        ticket.secret_answer_verified = True
        ticket.requested_email = data.requested_email
        ticket.save(update_fields=["secret_answer_verified", "requested_email"])
        event_record(
            ticket=ticket, kind=EventKind.SECRET_ANSWER, reason="right", request_id=request_id
        )
        return
    ticket.secret_answer_failures += 1
    ticket.secret_answer_verified = False
    ticket.save(update_fields=["secret_answer_failures", "secret_answer_verified"])
    event_record(
        ticket=ticket,
        kind=EventKind.SECRET_ANSWER,
        reason="wrong",
        data={"failures": ticket.secret_answer_failures},
        request_id=request_id,
    )
    if account is not None:
        # A wrong answer counts like a failed login on the account (OWASP Security Questions).
        login_failure_record(portal="member", username=account.username)
    if ticket.secret_answer_failures < max_tries:
        return
    # Last try used: the e-mail can now only be changed by support, and the owner is told.
    if ticket.state == TicketState.PENDING:
        ticket_transition(
            ticket=ticket,
            transition_name="flag_mismatch_at_intake",
            actor=None,
            reason="secret_answer_tries_exhausted",
            request_id=request_id,
        )
    if account is not None and account.email:
        outbox_enqueue(
            template=EmailTemplate.SECRET_ANSWER_LOCKED,
            recipient=account.email,
            language=ticket.language,
            ticket=ticket,
            account=account,
        )
