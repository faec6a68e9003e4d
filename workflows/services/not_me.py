""" "This was not me": the link in every security e-mail, and what following it does.

Confirming (a POST, no login) freezes the account — no login, no recovery, every session ended —
cancels what is in progress for it (open tickets through a recorded transition, a pending
e-mail change, codes not yet sent), and opens a high-risk access ticket (`ACC-`) carrying the
account's recent history, for an agent to decide. Unfreezing is an agent's decision: confirming
that ticket (docs/product.md).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from members.models import Account, AccountStatus, EmailChangeOutcome
from members.services.accounts import account_freeze
from tickets.models import (
    OPEN_STATES,
    Channel,
    EventKind,
    MatchResult,
    RiskLevel,
    Ticket,
    TicketEvent,
    TicketKind,
)
from tickets.services import event_record, ticket_transition
from workflows import risk
from workflows.models import EmailTemplate, NotMeLink, OutboxMessage, OutboxStatus
from workflows.services.accounts import email_changes_cancel

LINK_DAYS = 30
# Every security e-mail: codes issued, password changed, e-mail changed or to confirm, closure,
# secret answer locked. (Acknowledgments carry none: they go to whatever address was typed, to
# members and strangers alike, and must read the same for both — docs/product.md §3.)
NOT_ME_TEMPLATES = frozenset(
    {
        EmailTemplate.CREDENTIALS,
        EmailTemplate.PASSWORD_CHANGED,
        EmailTemplate.EMAIL_CHANGED_OLD,
        EmailTemplate.EMAIL_CHANGED_NEW,
        EmailTemplate.EMAIL_CHANGE_CONFIRM,
        EmailTemplate.EMAIL_CHANGE_PENDING,
        EmailTemplate.ACCOUNT_CLOSED,
        EmailTemplate.SECRET_ANSWER_LOCKED,
    }
)
HISTORY_SHOWN = 50


class NotMeRefused(Exception):
    """A link that does nothing: `unknown` (forged, mistyped), `expired`, `used`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@sensitive_variables("token")
def not_me_link_issue(
    *, account_id: int, template: str, now: datetime.datetime | None = None
) -> str:
    """A fresh token for one e-mail's link; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    moment = now or timezone.now()
    NotMeLink.objects.create(
        account_id=account_id,
        template=template,
        token_hash=_digest(token),
        created_at=moment,
        expires_at=moment + datetime.timedelta(days=LINK_DAYS),
    )
    return token


@sensitive_variables("token")
def not_me_link_check(*, token: str, lock: bool = False) -> NotMeLink:
    """The link, or NotMeRefused: unknown, expired or already used."""
    links = NotMeLink.objects.select_related("account")
    if lock:
        links = links.select_for_update()
    link = links.filter(token_hash=_digest(token)).first()
    if link is None:
        raise NotMeRefused("unknown")
    if link.used_at is not None:
        raise NotMeRefused("used")
    if link.expires_at <= timezone.now():
        raise NotMeRefused("expired")
    return link


@dataclass(frozen=True)
class Frozen:
    account: Account
    ticket: Ticket
    cancelled: list[str]


def _history(account: Account) -> list[dict[str, Any]]:
    """The account's recent story, for the agent: its tickets' events, newest first."""
    if account.member_id is None:
        return []
    events = (
        TicketEvent.objects.filter(ticket__member_id=account.member_id)
        .select_related("ticket")
        .order_by("-created_at", "-id")[:HISTORY_SHOWN]
    )
    return [
        {
            "at": event.created_at.isoformat(),
            "ticket": event.ticket.reference,
            "kind": event.kind,
            "to_state": event.to_state,
            "reason": event.reason,
            "actor_kind": event.actor_kind,
        }
        for event in events
    ]


@sensitive_variables("token")
@transaction.atomic
def not_me_confirm(*, token: str, request_id: str = "") -> Frozen:
    """Freeze the account of a valid link, cancel what is in progress, open the ACC ticket."""
    link = not_me_link_check(token=token, lock=True)
    now = timezone.now()
    link.used_at = now
    link.save(update_fields=["used_at"])
    account = Account.objects.select_for_update().get(pk=link.account_id)
    member = account.member
    history = _history(account)
    cancelled: list[str] = []
    if account.status == AccountStatus.ACTIVE:
        account_freeze(account=account)
    open_tickets = (
        Ticket.objects.select_for_update()
        .filter(member_id=account.member_id, state__in=OPEN_STATES)
        .order_by("created_at", "id")
    )
    for open_ticket in open_tickets:
        ticket_transition(
            ticket=open_ticket,
            transition_name="cancel_for_frozen_account",
            actor=None,
            reason="not_me",
            request_id=request_id,
            data={"link_template": link.template},
        )
        cancelled.append(open_ticket.reference)
    # The veto: a change of address still waiting (for its link or its time) never applies; the
    # address on file stays in force. Support-driven ones say so in their ticket's history.
    vetoed = email_changes_cancel(account=account, outcome=EmailChangeOutcome.VETOED, now=now)
    # Codes not yet sent are not sent: the worker refuses a frozen account (credentials_issue).
    unsent = OutboxMessage.objects.filter(
        account=account,
        template=EmailTemplate.CREDENTIALS,
        status__in=[OutboxStatus.PENDING],
    ).count()
    signal = {"code": "member_reported_not_me", "weight": risk.WEIGHTS["member_reported_not_me"]}
    ticket: Ticket = Ticket(
        kind=TicketKind.ACCESS,
        channel=Channel.WEB,
        language=account_language(link),
        submitted_member_number=member.member_number if member is not None else "",
        submitted_last_name=member.last_name if member is not None else "",
        submitted_first_name=member.first_name if member is not None else "",
        submitted_birth_date=member.birth_date if member is not None else None,
        submitted_email=account.email,
        member=member,
        match_result=MatchResult.ACCOUNT_FROZEN,
        message="",
        risk_level=RiskLevel.HIGH,
        risk_score=signal["weight"],
        risk_signals=[signal],
    )
    ticket.save()
    event_record(
        ticket=ticket,
        kind=EventKind.CREATED,
        to_state=ticket.state,
        reason="not_me",
        data={
            "source": "not_me",
            "link_template": link.template,
            "link_sent_at": link.created_at.isoformat(),
            "cancelled": cancelled,
            "codes_not_sent": unsent,
            "email_changes_vetoed": len(vetoed),
            "history": history,
        },
        request_id=request_id,
    )
    return Frozen(account=account, ticket=ticket, cancelled=cancelled)


def account_language(link: NotMeLink) -> str:
    """The language of the e-mail that carried the link, French by default."""
    message = (
        OutboxMessage.objects.filter(account_id=link.account_id, template=link.template)
        .order_by("-created_at")
        .values_list("language", flat=True)
        .first()
    )
    return message or "fr"
