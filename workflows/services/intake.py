"""Intake: a request (from a member, or an agent on their behalf) becomes a checked ticket."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from members.models import Account
from members.secret_answers import secret_answer_hash
from tickets.models import Channel, EventKind, Ticket, TicketKind
from tickets.services import event_record, ticket_transition
from workflows.models import EmailTemplate
from workflows.services.matching import registry_check
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


@sensitive_variables("data")
@transaction.atomic
def request_submit(
    *, data: RequestData, actor: Account | None = None, request_id: str = ""
) -> Ticket:
    """Store the request, run the registry check, queue the neutral acknowledgment e-mail.

    Every outcome of the check does the same work (queries, one hash, one e-mail), so nothing the
    member sees or waits for tells whether the person is in the registry (SECURITY.md 1-2).
    """
    check = registry_check(
        kind=data.kind,
        member_number=data.member_number,
        nir=data.nir,
        last_name=data.last_name,
        first_name=data.first_name,
        birth_date=data.birth_date,
    )
    # Hash even when no answer was asked for, so every path costs one hash.
    answer_hash = secret_answer_hash(data.secret_answer)
    ticket = Ticket(
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
        secret_answer_hash=answer_hash if data.kind == TicketKind.REGISTRATION else "",
        message=data.message,
        member=check.member,
        match_result=check.result,
        match_details=check.details,
        created_by=actor if actor is not None and actor.is_staff else None,
    )
    ticket.save()
    event_record(
        ticket=ticket,
        kind=EventKind.CREATED,
        actor=actor,
        to_state=ticket.state,
        reason=data.channel,
        data={"match_result": check.result},
        request_id=request_id,
    )
    if not check.is_clean_match:
        ticket_transition(
            ticket=ticket,
            transition_name="flag_mismatch_at_intake",
            actor=None,
            reason=check.result,
            request_id=request_id,
        )
    outbox_enqueue(
        template=EmailTemplate.ACKNOWLEDGMENT,
        recipient=data.email,
        language=data.language,
        ticket=ticket,
    )
    return ticket
