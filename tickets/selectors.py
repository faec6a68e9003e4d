"""Reads for the desk: querysets with what their pages need, nothing more."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Lower

from members.models import Account, Coverage, Member
from members.names import normalise_name
from members.nir import normalise_nir
from tickets.models import Ticket, TicketEvent

QUEUE_COLUMNS = (
    "reference",
    "kind",
    "channel",
    "state",
    "created_at",
    "decided_at",
    "submitted_last_name",
    "submitted_first_name",
    "submitted_member_number",
    "match_result",
    "risk_level",
    "last_name_key",
    "assignee__username",
)
# Sort keys a queue accepts, each with the columns it orders by (then id). Each is led by an
# index after the queue's equality filters, so ORDER BY … LIMIT reads an index in order:
# received/decided by the queue indexes, "name" (a name search: last name, then oldest first)
# by ticket_name_created_idx, whose range on last_name_key is the search itself.
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "created_at": ("created_at",),
    "decided_at": ("decided_at",),
    "name": ("last_name_key", "created_at"),
}
SORT_FIELDS = tuple(SORT_KEYS)
PER_PAGE = 50


def queue_tickets() -> QuerySet[Ticket]:
    """Tickets for a queue table, oldest first (a triage queue)."""
    tickets: QuerySet[Ticket] = (
        Ticket.objects.select_related("assignee").only(*QUEUE_COLUMNS).order_by("created_at", "id")
    )
    return tickets


@dataclass(frozen=True)
class KeysetPage:
    """One page of a keyset-paginated queue: never a COUNT, never an OFFSET."""

    rows: list[Ticket]
    next_cursor: str = ""
    previous_cursor: str = ""
    sort: str = "created_at"
    extra: dict[str, Any] = field(default_factory=dict)


def _encode_cursor(ticket: Ticket, fields: tuple[str, ...]) -> str:
    values = [getattr(ticket, f) for f in fields]
    payload = [v.isoformat() if isinstance(v, datetime.datetime) else v for v in values]
    raw = json.dumps([*payload, ticket.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str, fields: tuple[str, ...] = ("created_at",)) -> list[Any] | None:
    """Parse a cursor from the query string; anything malformed means "no cursor"."""
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(data, list) or len(data) != len(fields) + 1:
        return None
    *values, pk = data
    if not isinstance(pk, int) or isinstance(pk, bool) or not 0 < pk < 2**63:
        return None
    parsed: list[Any] = []
    for name, value in zip(fields, values, strict=True):
        if not isinstance(value, str) or len(value) > 200:
            return None
        if name == "last_name_key":
            parsed.append(value)
            continue
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        parsed.append(moment)
    return [*parsed, pk]


def _beyond(fields: tuple[str, ...], key: list[Any], *, forwards: bool) -> Q:
    """Rows strictly after `key` (values of fields, then id) in the scan direction.

    Written as `f1 >= v1 AND (f1 > v1 OR (f1 = v1 AND f2 > v2) OR …)` rather than a bare OR
    so that the first term is an index range condition: PostgreSQL starts the scan at the
    cursor instead of filtering from the start of the index.
    """
    gt, ge = ("gt", "gte") if forwards else ("lt", "lte")
    columns = (*fields, "pk")
    after = Q(pk__in=[])
    for i, column in enumerate(columns):
        equal = dict(zip(columns[:i], key[:i], strict=True))
        after |= Q(**equal, **{f"{column}__{gt}": key[i]})
    return Q(**{f"{fields[0]}__{ge}": key[0]}) & after


def keyset_page(
    queryset: QuerySet[Ticket],
    *,
    sort: str = "created_at",
    after: str = "",
    before: str = "",
    per_page: int = PER_PAGE,
) -> KeysetPage:
    """Fetch one page ordered by (sort field, id) starting after/before a cursor; one query."""
    descending = sort.startswith("-")
    sort_key = sort.lstrip("-")
    if sort_key not in SORT_KEYS:
        sort_key, descending = "created_at", False
    fields = SORT_KEYS[sort_key]
    sort = f"-{sort_key}" if descending else sort_key
    if sort_key == "decided_at":
        queryset = queryset.filter(decided_at__isnull=False)
    after_key = decode_cursor(after, fields) if after else None
    before_key = decode_cursor(before, fields) if before and after_key is None else None
    # Walking backwards (the "previous" link) reads the index the other way, then flips.
    backwards = before_key is not None
    forwards_in_index = descending == backwards
    columns = (*fields, "id")
    order = columns if forwards_in_index else tuple(f"-{c}" for c in columns)
    cursor = after_key or before_key
    if cursor is not None:
        queryset = queryset.filter(_beyond(fields, cursor, forwards=forwards_in_index))
    rows = list(queryset.order_by(*order)[: per_page + 1])
    has_more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    if not rows:
        return KeysetPage(rows=[], sort=sort)
    first, last = _encode_cursor(rows[0], fields), _encode_cursor(rows[-1], fields)
    if backwards:
        return KeysetPage(
            rows=rows, next_cursor=last, previous_cursor=first if has_more else "", sort=sort
        )
    return KeysetPage(
        rows=rows,
        next_cursor=last if has_more else "",
        previous_cursor=first if after_key is not None else "",
        sort=sort,
    )


def ticket_for_desk(*, reference: str) -> Ticket:
    """The ticket with its member, the member's account and coverages, and the people on it."""
    ticket: Ticket = (
        Ticket.objects.select_related(
            "member__account", "assignee", "decided_by", "created_by", "approval_requested_by"
        )
        .prefetch_related(Prefetch("member__coverages", queryset=Coverage.objects.order_by("kind")))
        .get(reference=reference)
    )
    return ticket


def ticket_history(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    """The ticket's timeline, oldest first (event_ticket_idx)."""
    return (
        TicketEvent.objects.filter(ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "id")
    )


def ticket_emails(*, ticket: Ticket) -> QuerySet[Any]:
    """The e-mails queued for this ticket with their delivery status (FK index on ticket)."""
    # Through the reverse relation: the outbox lives in `workflows`, a layer above tickets.
    return (
        ticket.outbox_messages.all()
        .only(
            "template",
            "recipient",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
            "ticket_id",
        )
        .order_by("created_at", "id")
    )


def member_other_tickets(
    *, member_id: int | None, exclude_pk: int | None = None, limit: int = 20
) -> list[Ticket]:
    """A member's tickets, newest first (ticket_member_kind_idx; a member has few)."""
    if member_id is None:
        return []
    queryset = Ticket.objects.filter(member_id=member_id).only(
        "reference", "kind", "state", "channel", "created_at", "decided_at", "member_id"
    )
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    return list(queryset.order_by("-created_at", "-id")[:limit])


MEMBER_SEARCH_LIMIT = 50


def member_search(*, query: str, limit: int = MEMBER_SEARCH_LIMIT) -> list[Member]:
    """Registry search by member ID, NIR, e-mail or name prefix; each branch hits one index."""
    text = " ".join(query.split())[:100]
    if not text:
        return []
    members = Member.objects.select_related("account").only(
        "member_number",
        "nir",
        "last_name",
        "first_name",
        "birth_date",
        "email",
        "account__status",
        "account__username",
    )
    if "@" in text:
        # member_email_lower_idx
        members = members.alias(email_lower=Lower("email")).filter(email_lower=text.lower())
    elif any(char.isdigit() for char in text):
        compact = normalise_nir(text)
        # member_number's unique index, member_nir_idx
        members = members.filter(Q(member_number=compact) | Q(nir=compact))
    else:
        if "," in text:
            last, _sep, first = text.partition(",")
            last_key, first_key = normalise_name(last), normalise_name(first)
        else:
            last_key, first_key = normalise_name(text), ""
        if not last_key:
            return []
        # member_name_key_pattern_idx (PostgreSQL) / member_name_key_idx
        members = members.filter(
            last_name_key__startswith=last_key, first_name_key__startswith=first_key
        )
    return list(members.order_by("last_name_key", "first_name_key", "id")[:limit])


def member_for_desk(*, member_number: str) -> Member:
    """A registry member with account and coverages for the member page."""
    return (
        Member.objects.select_related("account")
        .prefetch_related(Prefetch("coverages", queryset=Coverage.objects.order_by("kind")))
        .get(member_number=member_number)
    )


def staff_accounts() -> QuerySet[Account]:
    """Active staff, for the assignee filter."""
    return Account.objects.filter(is_staff=True, is_active=True).order_by("username")
