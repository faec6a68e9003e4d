"""Takeover signals: what a request shares with others, weighed in one place (docs/product.md).

An attacker after someone's account asks for new codes or a new address with details found
elsewhere, often several times, for several people, from one place, or right after changing the
address. Each signal below has a weight; the ticket's score is their sum and its level follows
from the two thresholds. Every weight, window and threshold is in this module.

Cost at intake (docs/benchmarks.md): three queries, all on indexes — one for the typed address on
file elsewhere (accounts and registry), one aggregate over the recent intake traces, one insert.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from members.models import Account, Member
from members.services.accounts import emails_differ
from tickets.models import RiskLevel, TicketKind
from workflows.models import IntakeTrace

# --- weights and thresholds ----------------------------------------------------------
WEIGHTS: dict[str, int] = {
    # The typed address is the one on file (account or registry) for another member.
    "email_on_file_for_other": 50,
    # The typed address was used in requests for other identities (TRACE_DAYS).
    "email_used_for_others": 35,
    # Several requests for one member within REPEAT_DAYS (REPEAT_MIN_OTHERS before this one).
    "repeat_requests": 20,
    # A recovery or e-mail change within CREDENTIAL_CHANGE_DAYS of an e-mail or password change.
    "recent_credential_change": 30,
    # One /24 (IPv4) or /64 (IPv6) submitting for several identities within NETWORK_HOURS.
    "network_several_identities": 30,
    # The secret answer was given wrong on this request.
    "secret_answer_failures": 25,
    # The typed address differs from the one on file for the member's account.
    "email_differs_from_file": 20,
    # The typed (or requested) address is at a disposable-address domain (vendored list).
    "disposable_domain": 30,
    # Not an intake signal: the ticket a "this was not me" link opens is high risk by itself.
    "member_reported_not_me": 100,
}
SOME_THRESHOLD = 20  # score from which a ticket shows "some signals"
HIGH_THRESHOLD = 50  # score from which a ticket is high risk (four-eyes, never in bulk)

TRACE_DAYS = 90
REPEAT_DAYS = 30
REPEAT_MIN_OTHERS = 2  # this request and at least two others: "several"
CREDENTIAL_CHANGE_DAYS = 14
NETWORK_HOURS = 24
NETWORK_MIN_OTHERS = 2  # a household shares an address: three identities or more is "several"
IPV4_PREFIX = 24
IPV6_PREFIX = 64

# Kinds that hand over an account (a recovery, an access problem, an e-mail change).
TAKEOVER_KINDS = (TicketKind.RECOVERY, TicketKind.ACCESS, TicketKind.EMAIL_CHANGE)

# What the agent reads on the ticket page, one plain sentence per signal.
LABELS: dict[str, Any] = {
    "email_on_file_for_other": _("The e-mail address typed is on file for another member."),
    "email_used_for_others": _(
        "The e-mail address typed was used in requests for other people (%(count)s)."
    ),
    "repeat_requests": _("%(count)s requests for this member in the last 30 days."),
    "recent_credential_change": _(
        "This request comes %(days)s day(s) after the member's e-mail address or password changed."
    ),
    "network_several_identities": _(
        "The same network sent requests for %(count)s other people in the last 24 hours."
    ),
    "secret_answer_failures": _("The secret answer was given wrong (%(count)s time(s))."),
    "email_differs_from_file": _(
        "The e-mail address typed differs from the one on the member's account."
    ),
    "disposable_domain": _("The e-mail address is at a disposable-address provider (%(domain)s)."),
    "member_reported_not_me": _(
        "The member followed the “this was not me” link of an e-mail: the account is frozen."
    ),
}

DISPOSABLE_LIST = Path(__file__).resolve().parent / "data" / "disposable_domains.txt"


@cache
def disposable_domains() -> frozenset[str]:
    """The vendored list (source and date in the file's header)."""
    lines = DISPOSABLE_LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def email_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().casefold()


def is_disposable(address: str) -> bool:
    """The domain, or any parent domain, is on the list (`x.mailinator.com` counts)."""
    domain = email_domain(address)
    domains = disposable_domains()
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts) - 1))


# --- keys: counted, never read back ----------------------------------------------------------
def _key(kind: str, value: str) -> str:
    return salted_hmac(f"guichet.risk.{kind}", value, algorithm="sha256").hexdigest()


def email_key(address: str) -> str:
    return _key("email", address.strip().casefold())


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) an address belongs to; "" when there is none to trust."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def network_key(ip: str) -> str:
    network = network_of(ip)
    return _key("network", network) if network else ""


def identity_key(
    *, member_pk: int | None, last_name_key: str, first_name_key: str, birth: datetime.date | None
) -> str:
    """One person: the registry member when found, else the folded names and birth date typed."""
    if member_pk is not None:
        return _key("identity", f"member:{member_pk}")
    return _key("identity", f"typed:{last_name_key}|{first_name_key}|{birth or ''}")


# --- the decision ----------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """What the signals look at, gathered by `evidence_gather` (or built by hand in tests)."""

    kind: str
    typed_email: str
    requested_email: str = ""
    email_on_file_for_other: bool = False
    other_identities_for_email: int = 0
    other_requests_for_member: int = 0
    other_identities_from_network: int = 0
    secret_answer_failures: int = 0
    account_email: str = ""
    days_since_credential_change: int | None = None


@dataclass(frozen=True)
class Assessment:
    score: int
    level: str
    signals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [signal["code"] for signal in self.signals]


def level_of(score: int) -> str:
    if score >= HIGH_THRESHOLD:
        return RiskLevel.HIGH
    if score >= SOME_THRESHOLD:
        return RiskLevel.SOME
    return RiskLevel.NONE


def risk_assess(evidence: Evidence) -> Assessment:
    """The signals that fire, their weights, the score and the level (pure: no query)."""
    fired: list[tuple[str, dict[str, Any]]] = []
    if evidence.email_on_file_for_other:
        fired.append(("email_on_file_for_other", {}))
    if evidence.other_identities_for_email >= 1:
        fired.append(("email_used_for_others", {"count": evidence.other_identities_for_email}))
    if evidence.other_requests_for_member >= REPEAT_MIN_OTHERS:
        fired.append(("repeat_requests", {"count": evidence.other_requests_for_member + 1}))
    days = evidence.days_since_credential_change
    if evidence.kind in TAKEOVER_KINDS and days is not None and days <= CREDENTIAL_CHANGE_DAYS:
        fired.append(("recent_credential_change", {"days": days}))
    if evidence.other_identities_from_network >= NETWORK_MIN_OTHERS:
        fired.append(
            ("network_several_identities", {"count": evidence.other_identities_from_network})
        )
    if evidence.secret_answer_failures >= 1:
        fired.append(("secret_answer_failures", {"count": evidence.secret_answer_failures}))
    if (
        evidence.kind != TicketKind.REGISTRATION
        and evidence.account_email
        and evidence.typed_email
        and emails_differ(evidence.typed_email, evidence.account_email)
    ):
        fired.append(("email_differs_from_file", {}))
    for address in (evidence.typed_email, evidence.requested_email):
        if address and is_disposable(address):
            fired.append(("disposable_domain", {"domain": email_domain(address)}))
            break
    signals = [{"code": code, "weight": WEIGHTS[code], **detail} for code, detail in fired]
    score = sum(signal["weight"] for signal in signals)
    return Assessment(score=score, level=level_of(score), signals=signals)


def signal_sentence(signal: dict[str, Any]) -> str:
    """The plain sentence the desk shows for one stored signal (in the active language)."""
    label = LABELS.get(str(signal.get("code", "")))
    if label is None:
        return str(signal.get("code", ""))
    params = {key: value for key, value in signal.items() if key not in ("code", "weight")}
    return str(label) % params if params else str(label)


# --- gathering (the queries) ----------------------------------------------------------
# The two reads are plain SQL written once (same conditions as the ORM would write, same
# indexes): building them through the ORM cost 5 ms of CPU per submission against 0.3 ms for
# sending the same SQL (docs/benchmarks.md, "Cost at intake"), the whole of the signals' budget.
_ACCOUNT = Account._meta.db_table
_MEMBER = Member._meta.db_table
_TRACE = IntakeTrace._meta.db_table
# One row if the address is another member's, on their account or in the registry:
# account_email_lower_idx and member_email_lower_idx, LOWER() as Lower("email") writes it.
_EMAIL_ON_FILE_SQL = (
    f'SELECT 1 FROM "{_ACCOUNT}" WHERE LOWER("email") = %s AND "member_id" IS NOT NULL'  # noqa: S608
    f' AND "member_id" <> %s UNION ALL SELECT 1 FROM "{_MEMBER}" WHERE LOWER("email") = %s'
    ' AND "id" <> %s LIMIT 1'
)


def _email_on_file_for_other(typed_email: str, member_pk: int | None) -> bool:
    """One query: the address is another member's, on their account or in the registry."""
    folded = typed_email.strip().lower()
    if not folded:
        return False
    # No member found: nobody to leave out (pk 0 is never a row).
    own = member_pk if member_pk is not None else 0
    with connection.cursor() as cursor:
        cursor.execute(_EMAIL_ON_FILE_SQL, [folded, own, folded, own])
        return cursor.fetchone() is not None


@cache
def _trace_counts_sql(*, member: bool, network: bool) -> str:
    """The aggregate for a submission with or without a member and a network (four shapes)."""
    others = '"identity_key" <> %s'
    email = '("email_key" = %s AND "created_at" >= %s)'
    columns = [f'COUNT(DISTINCT CASE WHEN {email} AND {others} THEN "identity_key" END)']
    scope = [email]
    if member:
        condition = '("member_id" = %s AND "created_at" >= %s)'
        columns.append(f'COUNT(CASE WHEN {condition} THEN "id" END)')
        scope.append(condition)
    if network:
        condition = '("network_key" = %s AND "created_at" >= %s)'
        columns.append(
            f'COUNT(DISTINCT CASE WHEN {condition} AND {others} THEN "identity_key" END)'
        )
        scope.append(condition)
    # Each branch of the OR is served by its own index (a BitmapOr on PostgreSQL).
    return f'SELECT {", ".join(columns)} FROM "{_TRACE}" WHERE {" OR ".join(scope)}'  # noqa: S608


def _trace_counts(
    *, e_key: str, n_key: str, i_key: str, member_pk: int | None, now: datetime.datetime
) -> dict[str, int]:
    """One aggregate over the recent traces; each branch of the OR is served by its own index."""
    since = connection.ops.adapt_datetimefield_value
    email_params = [e_key, since(now - datetime.timedelta(days=TRACE_DAYS))]
    columns: list[Any] = [*email_params, i_key]
    scope: list[Any] = list(email_params)
    if member_pk is not None:
        member_params = [member_pk, since(now - datetime.timedelta(days=REPEAT_DAYS))]
        columns += member_params
        scope += member_params
    if n_key:
        network_params = [n_key, since(now - datetime.timedelta(hours=NETWORK_HOURS))]
        columns += [*network_params, i_key]
        scope += network_params
    sql = _trace_counts_sql(member=member_pk is not None, network=bool(n_key))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*columns, *scope])
        row = list(cursor.fetchone())
    counts = {"email": int(row.pop(0) or 0), "member": 0, "network": 0}
    if member_pk is not None:
        counts["member"] = int(row.pop(0) or 0)
    if n_key:
        counts["network"] = int(row.pop(0) or 0)
    return counts


def _days_since(moment: datetime.datetime | None, now: datetime.datetime) -> int | None:
    if moment is None:
        return None
    return max(0, (now - moment).days)


@dataclass(frozen=True)
class Submission:
    """One request as the signals see it (from intake, or rebuilt from a stored ticket)."""

    kind: str
    typed_email: str
    requested_email: str
    member_pk: int | None
    account: Account | None
    identity: str
    network: str
    secret_answer_failures: int


def evidence_gather(
    submission: Submission, *, now: datetime.datetime, own_requests: int = 0
) -> Evidence:
    """Two queries: the address on file elsewhere, and the counts over the intake traces.

    `own_requests`: traces of the submission itself already stored (a ticket re-assessed when a
    related request arrives), left out of "other requests for the member".
    """
    counts = _trace_counts(
        e_key=email_key(submission.typed_email),
        n_key=submission.network,
        i_key=submission.identity,
        member_pk=submission.member_pk,
        now=now,
    )
    account = submission.account
    changes = [
        moment
        for moment in (
            account.email_changed_at if account is not None else None,
            # A change still waiting (or vetoed) counts from when it was confirmed: the signal
            # must not wait for the change to apply.
            account.email_change_requested_at if account is not None else None,
            account.password_changed_at if account is not None else None,
        )
        if moment is not None
    ]
    return Evidence(
        kind=submission.kind,
        typed_email=submission.typed_email,
        requested_email=submission.requested_email,
        email_on_file_for_other=_email_on_file_for_other(
            submission.typed_email, submission.member_pk
        ),
        other_identities_for_email=counts["email"],
        other_requests_for_member=max(0, counts["member"] - own_requests),
        other_identities_from_network=counts["network"],
        secret_answer_failures=submission.secret_answer_failures,
        account_email=account.email if account is not None else "",
        days_since_credential_change=_days_since(max(changes), now) if changes else None,
    )
