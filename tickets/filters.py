"""The desk's ticket filters: ready-made queues, filters and search, each served by an index.

`TicketFilter` is the one way to narrow tickets for the desk; the supervisors' views reuse it
("reassign from any filtered queue", CSV export)::

    filterset = TicketFilter(request.GET, queryset=Ticket.objects.all(), request=request)
    tickets = filterset.qs  # filtered, NOT ordered: order it (e.g. "created_at", "id") yourself

Parameters (all optional, bad values are ignored and reported on `filterset.form`):
- `queue`: `open` (default), `mine`, `unassigned`, `mismatch`, `my_approval` (risky
  confirmations someone else asked for, for an approver), `approval` (all of them),
  `decided_today`, `all`;
  with a search (`q`) and no queue given, `all`.
- `q`: a reference (`REG-…`), a member ID or NIR (any digit), an e-mail (has `@`), or a name:
  accent- and case-insensitive prefix of the last name, `last, first` for both, or
  `first last`.
- `state`, `kind`, `channel`: one choice each; `risk`: `none`, `some` or `high` (the takeover
  signals' level, workflows/risk.py); `assignee`: a staff account's pk;
  `age`: one of `AGE_CHOICES`; `overdue=on`: open tickets past their kind's target
  (`settings.GUICHET_TARGET_BUSINESS_HOURS`, in business hours, as on the supervisors' page).

Which index serves what is commented on `Ticket.Meta.indexes`; every filter here maps to one.
"""

from __future__ import annotations

import datetime
import re
import sys
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member
from members.names import normalise_name
from members.nir import normalise_nir
from tickets.business_hours import over_target_cutoffs
from tickets.four_eyes import may_approve_any
from tickets.models import (
    OPEN_STATES,
    REFERENCE_REGEX,
    Channel,
    RiskLevel,
    Ticket,
    TicketKind,
    TicketState,
)
from tickets.selectors import staff_accounts

QUEUE_OPEN = "open"
QUEUE_CHOICES = [
    ("mine", _("My tickets")),
    ("unassigned", _("Unassigned")),
    ("mismatch", _("Identity mismatches")),
    ("my_approval", _("Awaiting my approval")),
    ("approval", _("Awaiting approval")),
    (QUEUE_OPEN, _("All open")),
    ("decided_today", _("Decided today")),
    ("all", _("All tickets")),
]
QUEUE_KEYS = frozenset(key for key, _label in QUEUE_CHOICES)

# (key, label, lower bound in hours or None, upper bound in hours or None) on the ticket's age.
AGE_BUCKETS: list[tuple[str, Any, int | None, int | None]] = [
    ("lt1h", _("Less than 1 hour"), None, 1),
    ("1h-24h", _("1 to 24 hours"), 1, 24),
    ("1d-3d", _("1 to 3 days"), 24, 72),
    ("gt3d", _("More than 3 days"), 72, None),
    ("gt7d", _("More than 7 days"), 168, None),
]
AGE_CHOICES = [(key, label) for key, label, _low, _high in AGE_BUCKETS]

_REFERENCE_RE = re.compile(rf"^{REFERENCE_REGEX}$")
SEARCH_MAX = 100


def overdue_cutoffs(now: datetime.datetime) -> dict[str, datetime.datetime]:
    """For each kind, the creation time before which an open ticket is over its target.

    Targets are business hours (`GUICHET_TARGET_BUSINESS_HOURS` on the calendar of
    `GUICHET_BUSINESS_HOURS` and `GUICHET_PUBLIC_HOLIDAYS`): the same rule as the supervisors' page.
    """
    return {k: v for k, v in over_target_cutoffs(now=now).items() if k in TicketKind.values}


def is_overdue(ticket: Ticket, cutoffs: dict[str, datetime.datetime]) -> bool:
    """Whether an open ticket has waited past its kind's target."""
    cutoff = cutoffs.get(ticket.kind)
    return ticket.state in OPEN_STATES and cutoff is not None and ticket.created_at < cutoff


def start_of_today() -> datetime.datetime:
    """Midnight today in the desk's time zone."""
    now = timezone.localtime()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def search_q(raw: str) -> Q:
    """Translate the desk's search box into one indexed condition (see module docstring)."""
    text = " ".join(raw.split())[:SEARCH_MAX]
    if not text:
        return Q()
    upper = text.upper()
    if _REFERENCE_RE.match(upper):
        # reference = %s: the unique index.
        return Q(reference=upper)
    if "@" in text:
        # lower(submitted_email) = %s: ticket_sub_email_lower_idx.
        return Q(submitted_email_lower=text.lower())
    if any(char.isdigit() for char in text):
        return _identifier_q(text)
    return _name_q(text)


def _identifier_q(text: str) -> Q:
    """A member ID or NIR typed on the ticket, or the registry member it was matched to."""
    compact = normalise_nir(text)
    # The registry lookup runs first (one indexed query) so that the ticket query is an OR of
    # plain equalities PostgreSQL can answer with a BitmapOr of indexes, not a subplan.
    member_ids = list(
        Member.objects.filter(Q(member_number=compact) | Q(nir=compact)).values_list(
            "pk", flat=True
        )[:20]
    )
    condition = Q(submitted_member_number=compact) | Q(submitted_nir=compact)
    if member_ids:
        condition |= Q(member_id__in=member_ids)
    return condition


def _name_q(text: str) -> Q:
    """Prefix of the normalised last name; `last, first` or `first last` narrow by first name."""
    if "," in text:
        last, _sep, first = text.partition(",")
        last_key, first_key = normalise_name(last), normalise_name(first)
        if not last_key:
            return Q(first_name_key__startswith=first_key) if first_key else Q()
        return Q(last_name_key__startswith=last_key, first_name_key__startswith=first_key)
    key = normalise_name(text)
    if not key:
        return Q(pk__in=[])
    # A range, not LIKE: an index seeks on it whatever the collation, in name order
    # (ticket_name_created_idx), so a page reads 50 index entries however common the name.
    # Keys are normalised (lower-case letters, digits, single spaces): under C/byte order the
    # range is exactly the prefix; a linguistic collation that ignores spaces may add a
    # "Mar Tinez" to "martin". Adding LIKE back makes the planner guess a handful of rows and
    # sort thousands instead (measured: 25 ms against 0.3 ms at 1M tickets).
    if ord(key[-1]) >= sys.maxunicode:
        condition = Q(last_name_key__startswith=key)
    else:
        condition = Q(last_name_key__gte=key, last_name_key__lt=key[:-1] + chr(ord(key[-1]) + 1))
    head, _sep, tail = key.partition(" ")
    if tail:
        condition |= Q(last_name_key__startswith=tail, first_name_key__startswith=head)
    return condition


class TicketFilter(django_filters.FilterSet):
    """Queues, filters and search over tickets; `qs` is filtered but not ordered."""

    queue = django_filters.ChoiceFilter(
        label=_("Queue"), choices=QUEUE_CHOICES, method="filter_queue", empty_label=None
    )
    q = django_filters.CharFilter(label=_("Search"), method="filter_search", max_length=SEARCH_MAX)
    state = django_filters.ChoiceFilter(label=_("State"), choices=TicketState.choices)
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=TicketKind.choices)
    channel = django_filters.ChoiceFilter(label=_("Channel"), choices=Channel.choices)
    # ticket_open_risk_idx (risk_level, created_at, id) on open tickets.
    risk = django_filters.ChoiceFilter(
        label=_("Risk"), field_name="risk_level", choices=RiskLevel.choices
    )
    assignee = django_filters.ModelChoiceFilter(
        label=_("Assignee"), queryset=lambda _request: staff_accounts()
    )
    age = django_filters.ChoiceFilter(label=_("Age"), choices=AGE_CHOICES, method="filter_age")
    overdue = django_filters.BooleanFilter(
        label=_("Over its target time"),
        method="filter_overdue",
        widget=forms.CheckboxInput,
    )

    class Meta:
        model = Ticket
        fields = ["queue", "q", "state", "kind", "channel", "risk", "assignee", "age", "overdue"]

    def __init__(
        self,
        data: QueryDict | dict[str, Any] | None = None,
        *args: Any,
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> None:
        data = (data or QueryDict()).copy()
        if data.get("queue") not in QUEUE_KEYS:
            data["queue"] = "all" if str(data.get("q", "")).strip() else QUEUE_OPEN
        super().__init__(data, *args, request=request, **kwargs)
        self.now = timezone.now()

    @property
    def is_name_search(self) -> bool:
        """A name search: its results come in name order (ticket_name_created_idx)."""
        text = str(self.data.get("q", "")).strip()
        return bool(text) and not (
            "@" in text or any(char.isdigit() for char in text) or _REFERENCE_RE.match(text.upper())
        )

    @property
    def queue_key(self) -> str:
        """The queue in force (after defaults)."""
        value = self.data.get("queue", QUEUE_OPEN)
        return value if value in QUEUE_KEYS else QUEUE_OPEN

    def filter_queue(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        if value == "mine":
            user = getattr(self.request, "user", None)
            user_id = user.pk if user is not None and user.is_authenticated else None
            # ticket_open_assignee_idx
            return queryset.filter(state__in=OPEN_STATES, assignee_id=user_id)
        if value == "unassigned":
            # ticket_unassigned_idx
            return queryset.filter(state__in=OPEN_STATES, assignee__isnull=True)
        if value == "mismatch":
            # ticket_open_queue_idx (state, created_at, id)
            return queryset.filter(state=TicketState.IDENTITY_MISMATCH)
        if value in ("approval", "my_approval"):
            # ticket_open_queue_idx (state, created_at, id)
            queryset = queryset.filter(state=TicketState.AWAITING_APPROVAL)
            if value == "my_approval":
                user = getattr(self.request, "user", None)
                if user is None or not user.is_authenticated or not may_approve_any(user):
                    return queryset.none()
                queryset = queryset.exclude(approval_requested_by_id=user.pk)
            return queryset
        if value == QUEUE_OPEN:
            # ticket_open_cover_idx (created_at, id) WHERE open
            return queryset.filter(state__in=OPEN_STATES)
        if value == "decided_today":
            # ticket_decided_cover_idx (decided_at) WHERE decided_at IS NOT NULL
            return queryset.filter(decided_at__gte=start_of_today())
        return queryset

    def filter_search(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        condition = search_q(value)
        if "@" in value:
            queryset = queryset.alias(submitted_email_lower=Lower("submitted_email"))
        return queryset.filter(condition)

    def filter_age(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        for key, _label, low, high in AGE_BUCKETS:
            if key == value:
                # A range on created_at: the queue's (…, created_at, id) index.
                if low is not None:
                    queryset = queryset.filter(
                        created_at__lte=self.now - datetime.timedelta(hours=low)
                    )
                if high is not None:
                    queryset = queryset.filter(
                        created_at__gt=self.now - datetime.timedelta(hours=high)
                    )
        return queryset

    def filter_overdue(
        self, queryset: QuerySet[Ticket], name: str, value: bool | None
    ) -> QuerySet[Ticket]:
        if not value:
            return queryset
        late = Q(pk__in=[])
        for kind, cutoff in overdue_cutoffs(self.now).items():
            late |= Q(kind=kind, created_at__lt=cutoff)
        # Late tickets are the oldest ones: scanning ticket_open_cover_idx from its start
        # finds them first, so the OR over kinds costs a filter, not a sort.
        return queryset.filter(late, state__in=OPEN_STATES)
