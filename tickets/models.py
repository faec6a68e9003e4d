"""Tickets: one per member request, with an explicit state machine and an append-only history."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from members.names import normalise_name

if TYPE_CHECKING:
    from members.models import Account

# Crockford base32: no I, L, O, U (docs/interfaces.md).
CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_REGEX = r"[A-Z]{3}-[0-9A-HJKMNP-TV-Z]{8}"


class TicketKind(models.TextChoices):
    REGISTRATION = "REG", _("Registration")
    RECOVERY = "REC", _("Forgotten codes")
    EMAIL_CHANGE = "EML", _("E-mail change")
    CLOSURE = "CLO", _("Account closure")
    ACCESS = "ACC", _("Access problem")


class Channel(models.TextChoices):
    WEB = "web", _("Web form")
    PHONE = "phone", _("Phone call")
    LETTER = "letter", _("Letter")
    EMAIL = "email", _("E-mail")


class TicketState(models.TextChoices):
    PENDING = "pending", _("Pending")
    IDENTITY_MISMATCH = "identity_mismatch", _("Identity mismatch")
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")


# Waiting for an agent's decision: confirm, reject or flag.
DECIDABLE_STATES = (TicketState.PENDING, TicketState.IDENTITY_MISMATCH)
# Not decided yet: the queues, the backlog and the expiry rule cover all of these.
OPEN_STATES = (*DECIDABLE_STATES, TicketState.AWAITING_APPROVAL)
# The reason code a high-risk ticket brings to four-eyes and to a refused bulk confirmation.
HIGH_RISK_REASON = "high_risk"


class RiskLevel(models.TextChoices):
    """How strongly the takeover signals point at someone else (weights: workflows/risk.py)."""

    NONE = "none", _("No signal")
    SOME = "some", _("Some signals")
    HIGH = "high", _("High risk")


class MatchResult(models.TextChoices):
    MATCH = "match", _("Match")
    MISMATCH = "mismatch", _("Mismatch")
    NOT_FOUND = "not_found", _("Not found in the registry")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible")
    ALREADY_REGISTERED = "already_registered", _("Already has an account")
    NO_ACCOUNT = "no_account", _("Has no account")
    ACCOUNT_CLOSED = "account_closed", _("Account closed")
    ACCOUNT_FROZEN = "account_frozen", _("Account frozen (the member said it was not them)")


class RejectionReason(models.TextChoices):
    IDENTITY_NOT_CONFIRMED = "identity_not_confirmed", _("Identity could not be confirmed")
    NOT_IN_REGISTRY = "not_in_registry", _("No such member in the registry")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible for an account")
    ALREADY_REGISTERED = "already_registered", _("Already has an account")
    NO_ACCOUNT = "no_account", _("Has no account")
    DUPLICATE = "duplicate", _("Duplicate request")
    SUSPECTED_FRAUD = "suspected_fraud", _("Suspected fraud")
    MEMBER_WITHDREW = "member_withdrew", _("Member withdrew the request")
    EXPIRED = "expired", _("Expired without a decision")
    ACCOUNT_FROZEN = "account_frozen", _("Cancelled: the member said it was not them")
    OTHER = "other", _("Other (see comment)")


class SendBackReason(models.TextChoices):
    """Why an approver sends a risky confirmation back to the desk (four-eyes)."""

    IDENTITY_DOUBT = "identity_doubt", _("The identity is not established enough")
    WRONG_OUTCOME = "wrong_outcome", _("The outcome is not the right one")
    MISSING_INFORMATION = "missing_information", _("Information is missing")
    SUSPECTED_FRAUD = "suspected_fraud", _("Suspected fraud")
    OTHER = "other", _("Other (see comment)")


def new_reference(kind: str) -> str:
    """A reference members can quote: kind, dash, 8 Crockford base32 characters (40 bits)."""
    body = "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(8))
    return f"{kind}-{body}"


def system_only(instance: object, user: object) -> bool:
    """Permission of the transitions only the system runs (intake check, expiry): no person."""
    return False


def four_eyes_approver(instance: object, user: object) -> bool:
    """Permission of `approve` and `send_back`: an approver who is not the maker."""
    from tickets.four_eyes import may_approve

    # django_fsm calls it with this Ticket and the acting account.
    return may_approve(cast("Ticket", instance), cast("Account", user))


class TicketQuerySet(models.QuerySet["Ticket"]):
    def open(self) -> TicketQuerySet:
        return self.filter(state__in=OPEN_STATES)


class Ticket(ConcurrentTransitionMixin, models.Model):
    """A member's request; `state` only moves through the transitions below."""

    reference = models.CharField(_("reference"), max_length=12, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=3, choices=TicketKind.choices)
    channel = models.CharField(
        _("channel"), max_length=8, choices=Channel.choices, default=Channel.WEB
    )
    state = FSMField(
        _("state"),
        default=TicketState.PENDING,
        choices=TicketState.choices,
        protected=True,
        max_length=20,
    )
    language = models.CharField(_("language"), max_length=8, default="fr")

    # What the member (or the agent on their behalf) typed, kept verbatim.
    submitted_member_number = models.CharField(max_length=20, blank=True, default="")
    submitted_nir = models.CharField(max_length=15, blank=True, default="")
    submitted_last_name = models.CharField(max_length=150, blank=True, default="")
    submitted_first_name = models.CharField(max_length=150, blank=True, default="")
    submitted_birth_date = models.DateField(null=True, blank=True)
    submitted_email = models.EmailField(max_length=254, blank=True, default="")
    # The typed names folded by members.names.normalise_name, for the desk's accent- and
    # case-insensitive prefix search (kept in step by save()).
    last_name_key = models.CharField(max_length=150, blank=True, default="", editable=False)
    first_name_key = models.CharField(max_length=150, blank=True, default="", editable=False)
    # A new address asked for (recovery with a dead address, e-mail change via support).
    requested_email = models.EmailField(max_length=254, blank=True, default="")
    secret_question = models.CharField(max_length=200, blank=True, default="")
    # Registration: the normalised answer, hashed, copied to the account on confirmation.
    secret_answer_hash = models.CharField(max_length=256, blank=True, default="", editable=False)
    # Recovery: whether the secret answer given was right, and how many tries failed.
    secret_answer_verified = models.BooleanField(default=False)
    secret_answer_failures = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(_("message"), blank=True, default="", max_length=5000)

    # The registry check, made at intake and stored so the agent sees what the system saw.
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        # ticket_member_kind_idx (member, kind, state) serves every lookup by member.
        db_index=False,
    )
    match_result = models.CharField(max_length=24, choices=MatchResult.choices, blank=True)
    match_details = models.JSONField(default=dict, blank=True)
    # Takeover signals (workflows/risk.py), computed at intake and refreshed when a related
    # request arrives: the level, its score and the signals that raised it, with their details.
    risk_level = models.CharField(
        _("risk"), max_length=4, choices=RiskLevel.choices, default=RiskLevel.NONE
    )
    risk_score = models.PositiveSmallIntegerField(default=0)
    risk_signals = models.JSONField(default=list, blank=True)
    # The last re-check after a registry import changed the member's identity fields or
    # coverages (workflows/services/registry_recheck.py): its result, the import's id, when.
    # `registry_now_matches` is the desk's mark "registry updated — now matches": set when a
    # ticket that did not match does now; never a confirmation by itself.
    recheck_result = models.CharField(
        max_length=24, choices=MatchResult.choices, blank=True, default=""
    )
    recheck_import_id = models.CharField(max_length=36, blank=True, default="")
    rechecked_at = models.DateTimeField(null=True, blank=True)
    registry_now_matches = models.BooleanField(default=False)

    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Four-eyes (tickets/four_eyes.py): who asked for the approval, when, why, from which state.
    approval_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    approval_requested_at = models.DateTimeField(null=True, blank=True)
    approval_reasons = models.JSONField(default=list, blank=True)
    approval_from_state = models.CharField(max_length=20, blank=True, default="")
    rejection_reason = models.CharField(
        max_length=32, choices=RejectionReason.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    # mypy sees this manager (and the constructor) as Any: django_fsm's `@override` resolves to
    # Any under Python 3.11 typing, which untypes ConcurrentTransitionMixin.__init__. Callers
    # annotate what they get from it.
    objects = TicketQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        permissions = [
            ("decide_ticket", _("Can confirm or reject a ticket")),
            ("claim_ticket", _("Can claim and release tickets")),
            ("take_over_ticket", _("Can take over a ticket claimed by someone else")),
            ("view_supervision", _("Can see the supervisors' views")),
            ("approve_ticket", _("Can approve or send back another's risky confirmation")),
        ]
        indexes = [
            # Queues: open tickets oldest first, by state (partial: decided tickets are most rows).
            models.Index(
                fields=["state", "created_at", "id"],
                name="ticket_open_queue_idx",
                condition=Q(state__in=OPEN_STATES),
            ),
            # "My tickets" / "Unassigned": open tickets by assignee, oldest first.
            models.Index(
                fields=["assignee", "created_at", "id"],
                name="ticket_open_assignee_idx",
                condition=Q(state__in=OPEN_STATES),
            ),
            # Any queue ordered oldest first with filters on kind.
            models.Index(fields=["kind", "created_at", "id"], name="ticket_kind_created_idx"),
            models.Index(fields=["created_at", "id"], name="ticket_created_idx"),
            # A member's other tickets; repeat-request detection (member, kind, open).
            models.Index(fields=["member", "kind", "state"], name="ticket_member_kind_idx"),
            # Desk search by typed member ID / e-mail.
            models.Index(fields=["submitted_member_number"], name="ticket_sub_member_idx"),
            # Supervisors' backlog (state x kind x age, over target, stale claims) and "oldest
            # waiting": an index-only scan of open tickets only, in arrival order. Also the desk
            # queue "All open" (and "over its target time"): state IN open ORDER BY created_at,
            # id LIMIT n, keyset on (created_at, id) (it replaced ticket_open_created_idx, the same
            # keys and condition without the included columns: docs/operations.md).
            models.Index(
                fields=["created_at", "id"],
                include=["state", "kind", "assignee", "claimed_at", "risk_level"],
                name="ticket_open_cover_idx",
                condition=Q(state__in=OPEN_STATES),
            ),
            # Supervisors' 30-day figures (decided per day, people, the promise): index-only
            # range scan of decisions by time, carrying what the aggregates read. Also "Decided
            # today" (any decided_at range implies NOT NULL; it replaced ticket_decided_idx).
            models.Index(
                fields=["decided_at"],
                include=["state", "kind", "decided_by", "claimed_at", "created_at"],
                name="ticket_decided_cover_idx",
                condition=Q(decided_at__isnull=False),
            ),
            # Desk queue "Unassigned": open AND assignee IS NULL ORDER BY created_at, id.
            models.Index(
                fields=["created_at", "id"],
                name="ticket_unassigned_idx",
                condition=Q(state__in=OPEN_STATES, assignee__isnull=True),
            ),
            # Desk filter "kind" on an open queue: kind = %s AND open ORDER BY created_at, id.
            models.Index(
                fields=["kind", "created_at", "id"],
                name="ticket_open_kind_idx",
                condition=Q(state__in=OPEN_STATES),
            ),
            # Desk filter "channel" on an open queue: channel = %s AND open ORDER BY created_at.
            models.Index(
                fields=["channel", "created_at", "id"],
                name="ticket_open_channel_idx",
                condition=Q(state__in=OPEN_STATES),
            ),
            # Desk search by name: last_name_key LIKE 'prefix%' [AND first_name_key LIKE ...];
            # pattern ops so PostgreSQL serves LIKE prefixes whatever the database collation.
            models.Index(
                fields=["last_name_key", "first_name_key"],
                name="ticket_name_key_idx",
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
            ),
            # Desk search by name, results in name order: last_name_key >= %s AND
            # last_name_key < %s [AND LIKE] ORDER BY last_name_key, created_at, id LIMIT n
            # (an index range in order: no sort, only the page's rows read).
            models.Index(
                fields=["last_name_key", "created_at", "id"], name="ticket_name_created_idx"
            ),
            # Desk filter "risk" on an open queue: risk_level = %s AND open ORDER BY created_at.
            models.Index(
                fields=["risk_level", "created_at", "id"],
                name="ticket_open_risk_idx",
                condition=Q(state__in=OPEN_STATES),
            ),
            # The same filter on every ticket (`queue=all&risk=some|high`): risk_level = %s ORDER
            # BY created_at, id. Without it PostgreSQL walks ticket_created_idx and discards the
            # unflagged majority (1,700 rows read for a page of 51 high-risk ones at 1M tickets,
            # docs/benchmarks.md). Flagged tickets only: "none" is most rows, served in order by
            # ticket_created_idx with few discarded.
            models.Index(
                fields=["risk_level", "created_at", "id"],
                name="ticket_risky_created_idx",
                condition=Q(risk_level__in=[RiskLevel.SOME, RiskLevel.HIGH]),
            ),
            # Desk search by NIR: submitted_nir = %s.
            models.Index(fields=["submitted_nir"], name="ticket_sub_nir_idx"),
            # Desk search by e-mail: lower(submitted_email) = lower(%s).
            models.Index(Lower("submitted_email"), name="ticket_sub_email_lower_idx"),
        ]

    def __str__(self) -> str:
        return self.reference

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.reference:
            self.reference = new_reference(self.kind)
        self.last_name_key = normalise_name(self.submitted_last_name)[:150]
        self.first_name_key = normalise_name(self.submitted_first_name)[:150]
        self.updated_at = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "updated_at"}
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_high_risk(self) -> bool:
        """High risk: never confirmed in bulk, and a reason for a second agent (four-eyes)."""
        return self.risk_level == RiskLevel.HIGH

    def second_agent_reasons(self) -> list[str]:
        """Why confirming this ticket needs a second agent, as far as its risk goes.

        The one hook for four-eyes (the "nobody hands over an account alone" rule): its list of
        confirmation risks includes these codes, so a high-risk ticket always needs a second
        person, whichever way it is confirmed.
        """
        return [HIGH_RISK_REASON] if self.is_high_risk else []

    # --- guards (small, read-only) ---------------------------------------------------------
    def has_registry_member(self) -> bool:
        """Confirmation needs a registry member to act on."""
        return self.member_id is not None

    def needs_no_second_person(self) -> bool:
        """Four-eyes: a risky confirmation cannot be made by one person (tickets.four_eyes)."""
        from tickets.four_eyes import needs_approval

        return not needs_approval(self)

    def needs_a_second_person(self) -> bool:
        from tickets.four_eyes import needs_approval

        return needs_approval(self)

    # --- transitions: they change in-memory fields only; services save and record -------------
    @transition(
        field=state,
        source=TicketState.PENDING,
        target=TicketState.IDENTITY_MISMATCH,
        permission="tickets.decide_ticket",
    )
    def flag_mismatch(self) -> None:
        """An agent sends a pending ticket to the identity-mismatch queue."""

    @transition(
        field=state,
        source=TicketState.PENDING,
        target=TicketState.IDENTITY_MISMATCH,
        permission=system_only,
    )
    def flag_mismatch_at_intake(self) -> None:
        """The registry check at intake was not a clean match."""

    @transition(
        field=state,
        source=TicketState.PENDING,
        target=TicketState.PENDING,
        permission=system_only,
    )
    def pass_registry_check(self) -> None:
        """The registry check at intake was a clean match: recorded, the ticket stays pending.

        Recording it as a transition also makes a clean match cost the same queries as a
        mismatch, so response time tells nothing about the registry (docs/security.md §2).
        """

    @transition(
        field=state,
        source=TicketState.PENDING,
        target=TicketState.IDENTITY_MISMATCH,
        permission=system_only,
    )
    def flag_mismatch_after_registry_change(self) -> None:
        """A registry import changed the member: the pending request no longer matches."""
        self.registry_now_matches = False

    @transition(
        field=state,
        source=TicketState.AWAITING_APPROVAL,
        target=TicketState.IDENTITY_MISMATCH,
        permission=system_only,
    )
    def withdraw_approval_after_registry_change(self) -> None:
        """A registry import changed the member and the request no longer matches.

        The confirmation waiting for a second person was asked for on data that no longer
        holds: it is withdrawn (nobody may approve it) and the ticket goes to the mismatch
        queue, whatever state it was confirmed from; the maker decides again on the new data.
        """
        self.approval_requested_by = None
        self.approval_requested_at = None
        self.approval_reasons = []
        self.approval_from_state = ""
        self.registry_now_matches = False

    @transition(
        field=state,
        source=list(DECIDABLE_STATES),
        target=TicketState.CONFIRMED,
        # django_fsm types conditions as Callable[[Model], bool]; it calls them with this Ticket.
        conditions=[has_registry_member, needs_no_second_person],  # type: ignore[list-item]
        permission="tickets.decide_ticket",
    )
    def confirm(self) -> None:
        """An agent confirms the identity; the outcome is carried out by the workflow."""
        self.decided_at = timezone.now()
        self.rejection_reason = ""

    @transition(
        field=state,
        source=list(DECIDABLE_STATES),
        target=TicketState.AWAITING_APPROVAL,
        conditions=[has_registry_member, needs_a_second_person],  # type: ignore[list-item]
        permission="tickets.decide_ticket",
    )
    def request_approval(self, maker: Account, reasons: list[str]) -> None:
        """A risky confirmation: recorded, nothing carried out until someone else approves."""
        self.approval_from_state = self.state
        self.approval_requested_by = maker
        self.approval_requested_at = timezone.now()
        self.approval_reasons = list(reasons)

    @transition(
        field=state,
        source=TicketState.AWAITING_APPROVAL,
        target=TicketState.CONFIRMED,
        conditions=[has_registry_member],  # type: ignore[list-item]
        permission=four_eyes_approver,
    )
    def approve(self, approver: Account) -> None:
        """A second, different staff member approves: the confirmation is carried out."""
        from tickets.four_eyes import is_maker

        if is_maker(self, approver):  # the permission says so too; never rely on one check
            raise PermissionError("the maker of a confirmation cannot approve it")
        self.decided_by = approver
        self.decided_at = timezone.now()
        self.rejection_reason = ""

    @transition(
        field=state,
        source=TicketState.AWAITING_APPROVAL,
        target=RETURN_VALUE(*DECIDABLE_STATES),
        permission=four_eyes_approver,
    )
    def send_back(self, approver: Account) -> str:
        """The approver refuses: the ticket goes back to the state it was confirmed from."""
        from tickets.four_eyes import is_maker

        if is_maker(self, approver):
            raise PermissionError("the maker of a confirmation cannot send it back")
        back = self.approval_from_state or TicketState.PENDING
        self.approval_requested_by = None
        self.approval_requested_at = None
        self.approval_reasons = []
        self.approval_from_state = ""
        return back

    @transition(
        field=state,
        source=list(DECIDABLE_STATES),
        target=TicketState.REJECTED,
        permission="tickets.decide_ticket",
    )
    def reject(self, reason: str) -> None:
        """An agent rejects the request with a reason code."""
        self.decided_at = timezone.now()
        self.rejection_reason = reason

    @transition(
        field=state,
        source=list(OPEN_STATES),
        target=TicketState.REJECTED,
        permission=system_only,
    )
    def cancel_for_frozen_account(self) -> None:
        """The member said "this was not me": what was in progress for the account stops."""
        self.decided_at = timezone.now()
        self.rejection_reason = RejectionReason.ACCOUNT_FROZEN

    @transition(
        field=state,
        source=list(OPEN_STATES),
        target=TicketState.REJECTED,
        permission=system_only,
    )
    def expire(self) -> None:
        """The system rejects a request left without a decision for too long."""
        self.decided_at = timezone.now()
        self.rejection_reason = RejectionReason.EXPIRED


class EventKind(models.TextChoices):
    CREATED = "created", _("Request received")
    TRANSITION = "transition", _("State change")
    REFUSED = "refused", _("Refused action")
    CLAIM = "claim", _("Claimed")
    RELEASE = "release", _("Released")
    NOTE = "note", _("Internal note")
    EMAIL = "email", _("E-mail")
    ATTACHED = "attached", _("Repeat request attached")
    SECRET_ANSWER = "secret_answer", _("Secret answer checked")
    OUTCOME = "outcome", _("Outcome carried out")
    RISK = "risk", _("Risk signals updated")
    REGISTRY = "registry", _("Registry re-checked after an import")
    FRAUD_CHECK = "fraud_check", _("Fraud check")


class ActorKind(models.TextChoices):
    STAFF = "staff", _("Staff")
    MEMBER = "member", _("Member")
    SYSTEM = "system", _("System")


class AppendOnlyError(Exception):
    """History rows are never updated or deleted."""


class TicketEventQuerySet(models.QuerySet["TicketEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("ticket history is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("ticket history is append-only")


class TicketEvent(models.Model):
    """One append-only history row: who, when, what, from which state to which, why."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    from_state = models.CharField(max_length=20, blank=True, default="")
    to_state = models.CharField(max_length=20, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    reason = models.CharField(max_length=64, blank=True, default="")
    body = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Hash chain over the rows of one ticket, so tampering by a superuser is detectable.
    previous_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    row_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    objects = TicketEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("history event")
        verbose_name_plural = _("history events")
        ordering = ["created_at", "id"]
        indexes = [
            # A ticket's timeline, in order.
            models.Index(fields=["ticket", "created_at", "id"], name="event_ticket_idx"),
            # Audit view and per-agent figures: events by actor and day.
            models.Index(fields=["actor", "created_at"], name="event_actor_idx"),
            models.Index(fields=["kind", "created_at"], name="event_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.kind}:{self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The stubs type `pk` as int, but it is None until the row is first inserted.
        if cast("int | None", self.pk) is not None:
            raise AppendOnlyError("ticket history is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("ticket history is append-only")

    def canonical_payload(self) -> str:
        """The fields covered by the hash chain, serialised deterministically."""
        return json.dumps(
            {
                "ticket": self.ticket_id,
                "kind": self.kind,
                "from": self.from_state,
                "to": self.to_state,
                "actor": self.actor_id,
                "actor_kind": self.actor_kind,
                "reason": self.reason,
                "body": self.body,
                "data": self.data,
                "request_id": self.request_id,
                "created_at": self.created_at.isoformat(),
                "previous": self.previous_hash,
            },
            sort_keys=True,
            ensure_ascii=True,
            default=str,
        )

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical_payload().encode()).hexdigest()
