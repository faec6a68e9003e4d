"""Writes to the member registry: the CSV import (streaming, batched upserts)."""

from __future__ import annotations

import csv
import datetime
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import connection, transaction
from django.utils import timezone

from members.models import Coverage, CoverageKind, Member
from members.names import normalise_name
from members.nir import normalise_nir, validate_nir

CSV_HEADER = ["member_number", "nir", "last_name", "first_name", "birth_date", "email", "coverages"]
MEMBER_NUMBER_RE = re.compile(r"^[A-Z0-9]{4,20}$")
# Control characters, and lone surrogates (not text: no database or mailbox can hold one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
BATCH_SIZE = 1000
_COVERAGE_KINDS = frozenset(CoverageKind.values)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The member fields a row sets; a row whose values all match the stored member is not written.
_ROW_FIELDS = ("nir", "last_name", "first_name", "birth_date", "email")
_UPSERT_FIELDS = [*_ROW_FIELDS, "last_name_key", "first_name_key", "updated_at"]
# The fields the registry check compares or looks up by: a change re-checks the open tickets.
_IDENTITY_FIELDS = ("nir", "last_name", "first_name", "birth_date")
# The registry's e-mail column (Member.email); Django's validator alone admits up to 320.
EMAIL_MAX_LENGTH = 254
# Django's own e-mail patterns (EmailValidator), compiled once here: the validator reads them
# through lazy proxies, which cost more than the match itself at a million rows per import.
_EMAIL_USER = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
_EMAIL_DOMAIN = re.compile(EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags)
_validate_email = EmailValidator()


def email_is_valid(value: str) -> bool:
    """Django's `validate_email` verdict, with its common case (a domain name) done here.

    The rules are the validator's, whole: a domain literal or an allow-listed name goes to it.
    """
    if len(value) > EMAIL_MAX_LENGTH or "@" not in value or _CONTROL.search(value):
        return False
    user, domain = value.rsplit("@", 1)
    if _EMAIL_USER.match(user) is None:
        return False
    if _EMAIL_DOMAIN.match(domain) is not None:
        return True
    try:
        _validate_email(value)
    except ValidationError:
        return False
    return True


class MemberRow(NamedTuple):
    """One valid registry row (a named tuple: built a million times per full import)."""

    line: int
    member_number: str
    nir: str
    last_name: str
    first_name: str
    birth_date: datetime.date
    email: str
    coverages: tuple[str, ...]


@dataclass(frozen=True)
class BatchChanges:
    """What one written batch changed, for whoever re-checks the requests of those members.

    `changed`: the ids of members already stored whose identity fields (NIR, names, birth date)
    or set of coverages changed; an e-mail-only change is not in it. `added`: the members the
    batch created, by member number.
    """

    changed: list[int]
    added: dict[str, int]
    # Members this batch's transaction already holds locked (at least FOR NO KEY UPDATE: the
    # stored ones read, those it updated): the re-check need not lock them again.
    locked: frozenset[int] = frozenset()


@dataclass
class ImportReport:
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False
    # Members whose identity fields or coverages changed, and members added (not in a dry run).
    changed: int = 0
    added: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected


class RowError(ValueError):
    """A CSV row that cannot be imported; the message names the reason."""


def _in_future(day: datetime.date) -> bool:
    """Tell whether day is after today in the site's time zone.

    The local date is at most a day and a bit away from the server's, so a day more than two
    days before the server's date is in the past without asking for the (slower) local date.
    """
    if day < datetime.date.today() - datetime.timedelta(days=2):  # noqa: DTZ011 (a bound only)
        return False
    return day > timezone.localdate()


def _parse_date(value: str) -> datetime.date:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            if fmt == "%Y-%m-%d" and _ISO_DATE.fullmatch(value):
                day = datetime.date.fromisoformat(value)  # the common case, without strptime
            else:
                day = datetime.datetime.strptime(value, fmt).date()  # noqa: DTZ007 (calendar date)
        except ValueError:
            continue
        if day.year < 1900 or _in_future(day):
            raise RowError(f"birth_date out of range: {value!r}")
        return day
    raise RowError(f"birth_date is not a real date (YYYY-MM-DD or DD/MM/YYYY): {value!r}")


def _name(value: str, column: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise RowError(f"{column} is empty")
    if len(value) > 150:
        raise RowError(f"{column} is longer than 150 characters")
    if _CONTROL.search(value) or "<" in value or ">" in value:
        raise RowError(f"{column} contains forbidden characters")
    return value


def parse_member_row(line: int, record: dict[str, str]) -> MemberRow:
    """Validate one CSV record; raise RowError with a reason a person can act on."""
    member_number = (record.get("member_number") or "").strip().upper()
    if not MEMBER_NUMBER_RE.fullmatch(member_number):
        raise RowError(f"member_number must be 4-20 letters or digits: {member_number[:30]!r}")
    nir = normalise_nir(record.get("nir") or "")
    if nir:
        try:
            validate_nir(nir)
        except ValidationError as exc:
            raise RowError(f"nir is invalid ({exc.code})") from None
    email = (record.get("email") or "").strip()
    if email and not email_is_valid(email):
        if len(email) > EMAIL_MAX_LENGTH:
            raise RowError(f"email is longer than {EMAIL_MAX_LENGTH} characters")
        raise RowError("email is not a valid address")
    kinds = tuple([k for k in map(str.strip, (record.get("coverages") or "").split(";")) if k])
    unknown = [k for k in kinds if k not in _COVERAGE_KINDS]
    if unknown:
        raise RowError(f"unknown coverage kind(s): {', '.join(unknown)[:100]}")
    if len(set(kinds)) != len(kinds):
        raise RowError("a coverage kind is listed twice")
    return MemberRow(
        line,
        member_number,
        nir,
        _name(record.get("last_name") or "", "last_name"),
        _name(record.get("first_name") or "", "first_name"),
        _parse_date((record.get("birth_date") or "").strip()),
        email,
        kinds,
    )


def read_member_csv(lines: Iterable[str]) -> Iterator[tuple[int, MemberRow | RowError]]:
    """Stream (line number, row or error) from CSV text lines; the header is checked first."""
    reader = csv.reader(lines, strict=True)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise RowError("the file is empty") from None
    if header != CSV_HEADER:
        raise RowError(f"line 1: header must be {','.join(CSV_HEADER)}")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, RowError(f"malformed CSV: {exc}")
            continue
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(CSV_HEADER):
            yield line, RowError(f"expected {len(CSV_HEADER)} columns, found {len(values)}")
            continue
        try:
            yield line, parse_member_row(line, dict(zip(CSV_HEADER, values, strict=True)))
        except RowError as exc:
            yield line, exc


@functools.lru_cache(maxsize=16384)
def _name_key(value: str) -> str:
    """The search key of a name (bounded cache: names repeat across a registry)."""
    return normalise_name(value)[:150]


def _write_batch(
    batch: list[MemberRow], on_changes: Callable[[BatchChanges], None] | None = None
) -> BatchChanges:
    """Upsert one batch of members and replace their coverages, all or nothing.

    A constant number of queries whatever the batch size: one read of the stored members and
    one of their coverages, then only for what changed one upsert of the members (new or with
    a changed field), one delete and one insert of the coverages. Rows equal to what is stored
    are not written at all (their `updated_at` is kept). On PostgreSQL the same statements are
    written in SQL over arrays (`_write_batch_postgresql`), without building model instances;
    elsewhere (SQLite) through the ORM (`_write_batch_orm`). Both follow the same rules.

    `on_changes` runs inside the batch's transaction once it is written, with what changed: a
    caller's follow-up (the re-check of open requests) commits or rolls back with the batch.
    """
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            changes = _write_batch_postgresql(batch, now)
        else:
            changes = _write_batch_orm(batch, now)
        if on_changes is not None and (changes.changed or changes.added):
            on_changes(changes)
    return changes


def _write_batch_orm(batch: list[MemberRow], now: datetime.datetime) -> BatchChanges:
    numbers = [r.member_number for r in batch]
    stored = {
        m.member_number: m
        for m in Member.objects.filter(member_number__in=numbers)  # every field: no deferred
    }
    held: dict[int, set[str]] = {}
    if stored:
        for member_id, kind in Coverage.objects.filter(
            member_id__in=[m.pk for m in stored.values()]
        ).values_list("member_id", "kind"):
            held.setdefault(member_id, set()).add(kind)
    upserts: list[Member] = []
    recovered: list[tuple[Member, tuple[str, ...]]] = []
    changed: list[int] = []
    for r in batch:
        member = stored.get(r.member_number)
        if member is not None:
            covers_changed = set(r.coverages) != held.get(member.pk, set())
            if covers_changed:
                recovered.append((member, r.coverages))
            if covers_changed or any(getattr(member, f) != getattr(r, f) for f in _IDENTITY_FIELDS):
                changed.append(member.pk)
            if all(getattr(member, f) == getattr(r, f) for f in _ROW_FIELDS):
                continue
        else:
            member = Member(member_number=r.member_number, created_at=now)
            recovered.append((member, r.coverages))
        for f in _ROW_FIELDS:
            setattr(member, f, getattr(r, f))
        member.last_name_key = _name_key(r.last_name)
        member.first_name_key = _name_key(r.first_name)
        member.updated_at = now
        upserts.append(member)
    if upserts:
        # INSERT ... ON CONFLICT: a member another writer added meanwhile is updated, not
        # refused; the primary keys come back (RETURNING) for the coverages below.
        Member.objects.bulk_create(
            upserts,
            update_conflicts=True,
            unique_fields=["member_number"],
            update_fields=_UPSERT_FIELDS,
        )
    if recovered:
        Coverage.objects.filter(member_id__in=[m.pk for m, _ in recovered]).delete()
        Coverage.objects.bulk_create(
            [Coverage(member_id=m.pk, kind=k) for m, kinds in recovered for k in kinds]
        )
    return BatchChanges(
        changed=changed,
        added={m.member_number: m.pk for m in upserts if m.member_number not in stored},
    )


# PostgreSQL: the batch as one JSON parameter per statement, no model instances. JSON rather
# than arrays: the driver quotes an array element by element in Python (a regular expression
# each), json.dumps does the whole batch in C; the server unpacks either as fast.
# The stored members are locked as they are read, in member-number order, and new members are
# inserted in that order: two batches sharing members (a feed sending several at once) take
# their locks in one order, so they never deadlock, and the later one reads what the earlier
# one committed (its coverages included: no duplicate). The lock is the intake's (NO KEY).
_PG_STORED = (
    "SELECT id, member_number, nir, last_name, first_name, birth_date, email "
    'FROM "members_member" '
    "WHERE member_number = ANY(ARRAY(SELECT json_array_elements_text(%s::json))) "
    'ORDER BY member_number COLLATE "C" FOR NO KEY UPDATE'  # the order of Python's sorted()
)
_PG_HELD = (
    'SELECT member_id, kind FROM "members_coverage" '
    "WHERE member_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)::bigint))"
)
# A member another writer added meanwhile is updated, not refused; a row equal to what is
# stored (the same writer's values) is left alone and does not come back. `xmax = 0` tells a
# row this statement inserted from one it updated: a fresh member has no coverages to drop.
_PG_UPSERT = """
INSERT INTO "members_member" (member_number, nir, last_name, first_name, birth_date, email,
                            last_name_key, first_name_key, created_at, updated_at)
SELECT t.*, %s, %s FROM json_to_recordset(%s::json) AS t(
    member_number varchar, nir varchar, last_name varchar, first_name varchar, birth_date date,
    email varchar, last_name_key varchar, first_name_key varchar)
ON CONFLICT (member_number) DO UPDATE SET
    nir = EXCLUDED.nir, last_name = EXCLUDED.last_name, first_name = EXCLUDED.first_name,
    birth_date = EXCLUDED.birth_date, email = EXCLUDED.email,
    last_name_key = EXCLUDED.last_name_key, first_name_key = EXCLUDED.first_name_key,
    updated_at = EXCLUDED.updated_at
WHERE ("members_member".nir, "members_member".last_name, "members_member".first_name,
       "members_member".birth_date, "members_member".email)
      IS DISTINCT FROM
      (EXCLUDED.nir, EXCLUDED.last_name, EXCLUDED.first_name, EXCLUDED.birth_date, EXCLUDED.email)
RETURNING id, member_number, (xmax = 0) AS inserted
"""
_PG_IDS = 'SELECT member_number, id FROM "members_member" WHERE member_number = ANY(%s)'
_PG_DROP_COVERAGES = 'DELETE FROM "members_coverage" WHERE member_id = ANY(%s)'
_PG_ADD_COVERAGES = (
    'INSERT INTO "members_coverage" (member_id, kind) '
    "SELECT * FROM json_to_recordset(%s::json) AS t(member_id bigint, kind varchar)"
)


def _by_member_number(r: MemberRow) -> str:
    return r.member_number


def _upsert_record(r: MemberRow) -> dict[str, str]:
    """One row of `_PG_UPSERT`'s JSON parameter."""
    return {
        "member_number": r.member_number,
        "nir": r.nir,
        "last_name": r.last_name,
        "first_name": r.first_name,
        "birth_date": r.birth_date.isoformat(),
        "email": r.email,
        "last_name_key": _name_key(r.last_name),
        "first_name_key": _name_key(r.first_name),
    }


def _write_batch_postgresql(batch: list[MemberRow], now: datetime.datetime) -> BatchChanges:
    numbers = [r.member_number for r in batch]
    with connection.cursor() as cursor:
        cursor.execute(_PG_STORED, [json.dumps(numbers)])
        # (id, member_number, nir, last_name, first_name, birth_date, email)
        stored = {row[1]: row for row in cursor.fetchall()}
        held: dict[int, set[str]] = {}
        if stored:
            cursor.execute(_PG_HELD, [json.dumps([row[0] for row in stored.values()])])
            for member_id, kind in cursor.fetchall():
                held.setdefault(member_id, set()).add(kind)
        writes: list[MemberRow] = []
        new: list[MemberRow] = []
        recovered: list[tuple[int, tuple[str, ...]]] = []  # coverages dropped, then inserted
        fresh: list[tuple[int, tuple[str, ...]]] = []  # members just inserted: insert only
        changed: list[int] = []
        for r in batch:
            row = stored.get(r.member_number)
            if row is None:
                new.append(r)
                writes.append(r)
                continue
            pk = row[0]
            covers_changed = set(r.coverages) != held.get(pk, set())
            if covers_changed:
                recovered.append((pk, r.coverages))
            identity_changed = (r.nir, r.last_name, r.first_name, r.birth_date) != row[2:6]
            if covers_changed or identity_changed:
                changed.append(pk)
            if identity_changed or r.email != row[6]:
                writes.append(r)
        added: dict[str, int] = {}
        updated: set[int] = set()
        if writes:
            cursor.execute(
                _PG_UPSERT,
                [
                    now,
                    now,
                    json.dumps([_upsert_record(r) for r in sorted(writes, key=_by_member_number)]),
                ],
            )
            written: dict[str, int] = {}
            inserted: set[str] = set()
            for pk, number, was_inserted in cursor.fetchall():
                written[number] = pk
                if was_inserted:
                    inserted.add(number)
                else:
                    updated.add(pk)
            missing = [r.member_number for r in new if r.member_number not in written]
            if missing:  # added meanwhile by another writer with these very values
                cursor.execute(_PG_IDS, [missing])
                written.update(cursor.fetchall())
            added = {r.member_number: written[r.member_number] for r in new}
            for r in new:
                if r.member_number in inserted:
                    fresh.append((added[r.member_number], r.coverages))
                else:  # another writer's member: its coverages are replaced like any other
                    recovered.append((added[r.member_number], r.coverages))
        if recovered:
            cursor.execute(_PG_DROP_COVERAGES, [[pk for pk, _ in recovered]])
        if recovered or fresh:
            pairs = [(pk, kind) for pk, kinds in [*recovered, *fresh] for kind in kinds]
            if pairs:
                cursor.execute(
                    _PG_ADD_COVERAGES,
                    [json.dumps([{"member_id": pk, "kind": kind} for pk, kind in pairs])],
                )
    # Every stored member was locked by the first read, every other one by the upsert.
    locked = frozenset(row[0] for row in stored.values()) | frozenset(updated)
    return BatchChanges(changed=changed, added=added, locked=locked)


def member_import_rows(
    *,
    rows: Iterable[tuple[int, MemberRow | RowError]],
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    on_changes: Callable[[BatchChanges], None] | None = None,
) -> ImportReport:
    """Import valid rows in batches (constant memory); report every rejected row by line.

    `on_changes` is called in each batch's transaction with what the batch changed (see
    `_write_batch`); the workflows layer re-checks open requests through it.
    """
    report = ImportReport(dry_run=dry_run)
    batch: list[MemberRow] = []
    in_batch: set[str] = set()

    def flush() -> None:
        if batch and not dry_run:
            changes = _write_batch(batch, on_changes)
            report.changed += len(changes.changed)
            report.added += len(changes.added)
        report.imported += len(batch)
        batch.clear()
        in_batch.clear()
        if progress is not None:
            progress(report.imported + len(report.rejected))

    for line, row in rows:
        if isinstance(row, RowError):
            report.rejected.append((line, str(row)))
            continue
        if row.member_number in in_batch:
            flush()  # the same member twice: the later line wins, in order
        batch.append(row)
        in_batch.add(row.member_number)
        if len(batch) >= batch_size:
            flush()
    flush()
    return report
