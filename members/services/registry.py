"""Writes to the member registry: the CSV import (streaming, batched upserts)."""

from __future__ import annotations

import csv
import datetime
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from members.models import Coverage, CoverageKind, Member
from members.names import normalise_name
from members.nir import normalise_nir, validate_nir

CSV_HEADER = ["member_number", "nir", "last_name", "first_name", "birth_date", "email", "coverages"]
MEMBER_NUMBER_RE = re.compile(r"^[A-Z0-9]{4,20}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
BATCH_SIZE = 1000


@dataclass(frozen=True)
class MemberRow:
    line: int
    member_number: str
    nir: str
    last_name: str
    first_name: str
    birth_date: datetime.date
    email: str
    coverages: tuple[str, ...]


@dataclass
class ImportReport:
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.rejected


class RowError(ValueError):
    """A CSV row that cannot be imported; the message names the reason."""


def _parse_date(value: str) -> datetime.date:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            day = datetime.datetime.strptime(value, fmt).date()  # noqa: DTZ007 (calendar date)
        except ValueError:
            continue
        if day.year < 1900 or day > timezone.localdate():
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
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise RowError("email is not a valid address") from None
    kinds = tuple(k.strip() for k in (record.get("coverages") or "").split(";") if k.strip())
    unknown = [k for k in kinds if k not in CoverageKind.values]
    if unknown:
        raise RowError(f"unknown coverage kind(s): {', '.join(unknown)[:100]}")
    if len(set(kinds)) != len(kinds):
        raise RowError("a coverage kind is listed twice")
    return MemberRow(
        line=line,
        member_number=member_number,
        nir=nir,
        last_name=_name(record.get("last_name") or "", "last_name"),
        first_name=_name(record.get("first_name") or "", "first_name"),
        birth_date=_parse_date((record.get("birth_date") or "").strip()),
        email=email,
        coverages=kinds,
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


def _write_batch(batch: list[MemberRow]) -> None:
    """Upsert one batch of members and replace their coverages, all or nothing."""
    now = timezone.now()
    members = [
        Member(
            member_number=r.member_number,
            nir=r.nir,
            last_name=r.last_name,
            first_name=r.first_name,
            birth_date=r.birth_date,
            email=r.email,
            last_name_key=normalise_name(r.last_name)[:150],
            first_name_key=normalise_name(r.first_name)[:150],
            created_at=now,
            updated_at=now,
        )
        for r in batch
    ]
    with transaction.atomic():
        Member.objects.bulk_create(
            members,
            update_conflicts=True,
            unique_fields=["member_number"],
            update_fields=[
                "nir",
                "last_name",
                "first_name",
                "birth_date",
                "email",
                "last_name_key",
                "first_name_key",
                "updated_at",
            ],
        )
        ids = dict(
            Member.objects.filter(member_number__in=[r.member_number for r in batch]).values_list(
                "member_number", "pk"
            )
        )
        Coverage.objects.filter(member_id__in=ids.values()).delete()
        Coverage.objects.bulk_create(
            [Coverage(member_id=ids[r.member_number], kind=k) for r in batch for k in r.coverages]
        )


def member_import_rows(
    *,
    rows: Iterable[tuple[int, MemberRow | RowError]],
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import valid rows in batches (constant memory); report every rejected row by line."""
    report = ImportReport(dry_run=dry_run)
    batch: list[MemberRow] = []
    in_batch: set[str] = set()

    def flush() -> None:
        if batch and not dry_run:
            _write_batch(batch)
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
