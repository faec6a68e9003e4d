"""`manage.py import_members`: streaming, batched upserts, bad rows reported, never half-written."""

from __future__ import annotations

import datetime
import io
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.models import Coverage, CoverageKind, Member
from members.services.registry import RowError, parse_member_row
from tests.factories import MemberAccountFactory

pytestmark = pytest.mark.django_db

HEADER = "member_number,nir,last_name,first_name,birth_date,email,coverages"
NIR = "180017512345660"
GOOD = [
    f"100000001,{NIR},Martin,Zoë,1980-04-12,zoe@example.org,health_principal",
    "100000002,,Nguyễn,Thị Lan,05/03/1948,,retiree;provident_employee",
    "100000003,,O'Brien-Łukasz,Anne-Sophie,1969-12-24,asob@example.org,health_beneficiary",
]


def write_csv(
    tmp_path: Path,
    rows: list[str],
    *,
    name: str = "members.csv",
    bom: bool = False,
    header: str = HEADER,
) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8-sig" if bom else "utf-8")
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_members", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(path: Path, *args: str) -> tuple[str, str, CommandError]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("import_members", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), failed.value


def kinds(number: str) -> set[str]:
    return set(Coverage.objects.filter(member__member_number=number).values_list("kind", flat=True))


def test_a_good_file_is_imported(tmp_path: Path) -> None:
    out, err = run(write_csv(tmp_path, GOOD))
    assert "imported 3 rows; rejected 0" in out
    assert err == ""
    zoe = Member.objects.get(member_number="100000001")
    assert (zoe.nir, zoe.last_name, zoe.first_name, zoe.email) == (
        NIR,
        "Martin",
        "Zoë",
        "zoe@example.org",
    )
    assert zoe.birth_date == datetime.date(1980, 4, 12)
    assert zoe.last_name_key == "martin" and zoe.first_name_key == "zoe"
    lan = Member.objects.get(member_number="100000002")
    assert lan.birth_date == datetime.date(1948, 3, 5)  # DD/MM/YYYY accepted
    assert lan.last_name == "Nguyễn"
    assert kinds("100000002") == {CoverageKind.RETIREE, CoverageKind.PROVIDENT_EMPLOYEE}
    assert Member.objects.get(member_number="100000003").last_name == "O'Brien-Łukasz"


def test_a_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = write_csv(tmp_path, GOOD, bom=True)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    run(path)
    assert Member.objects.count() == 3


def test_windows_line_endings_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    path.write_bytes("\r\n".join([HEADER, GOOD[0], "", GOOD[1], ""]).encode())
    run(path)
    assert Member.objects.count() == 2


def test_a_re_import_updates_and_replaces_coverages(tmp_path: Path) -> None:
    run(write_csv(tmp_path, GOOD))
    zoe_pk = Member.objects.get(member_number="100000001").pk
    account = MemberAccountFactory(member=Member.objects.get(pk=zoe_pk))
    run(
        write_csv(
            tmp_path,
            ["100000001,,Martin-Durand,Zoë,1980-04-12,new@example.org,provident_employee;retiree"],
            name="second.csv",
        )
    )
    zoe = Member.objects.get(member_number="100000001")
    assert zoe.pk == zoe_pk  # an upsert: same row, the account still points at it
    assert (zoe.last_name, zoe.email, zoe.nir) == ("Martin-Durand", "new@example.org", "")
    assert zoe.last_name_key == "martin durand"
    assert kinds("100000001") == {CoverageKind.PROVIDENT_EMPLOYEE, CoverageKind.RETIREE}
    account.refresh_from_db()
    assert account.member_id == zoe_pk
    # Members absent from the second file are left alone.
    assert Member.objects.count() == 3
    assert kinds("100000002") == {CoverageKind.RETIREE, CoverageKind.PROVIDENT_EMPLOYEE}


def test_the_same_member_twice_in_a_file_keeps_the_later_line(tmp_path: Path) -> None:
    run(
        write_csv(
            tmp_path,
            [
                "100000001,,Martin,Zoë,1980-04-12,,health_principal",
                "100000001,,Martin,Zoé,1980-04-12,,retiree",
            ],
        )
    )
    zoe = Member.objects.get(member_number="100000001")
    assert zoe.first_name == "Zoé"
    assert kinds("100000001") == {CoverageKind.RETIREE}


OVERLONG_EMAIL = "p" * 60 + "@" + ".".join(["d" * 60] * 4) + ".org"
BAD_ROWS = {
    "bad_nir_key": ("100000011,180017512345661,Durand,Paul,1970-01-01,,retiree", "nir is invalid"),
    "impossible_date": ("100000012,,Durand,Paul,30/02/1990,,retiree", "birth_date is not a real"),
    "future_date": ("100000013,,Durand,Paul,2999-01-01,,retiree", "birth_date out of range"),
    "unknown_coverage": ("100000014,,Durand,Paul,1970-01-01,,health_principal;gold", "gold"),
    "empty_name": ("100000015,,   ,Paul,1970-01-01,,retiree", "last_name is empty"),
    "wrong_column_count": ("100000016,,Durand,Paul,1970-01-01,retiree", "expected 7 columns"),
    "duplicate_kind": ("100000017,,Durand,Paul,1970-01-01,,retiree;retiree", "listed twice"),
    "bad_member_number": ("1-2,,Durand,Paul,1970-01-01,,retiree", "member_number"),
    "bad_email": ("100000018,,Durand,Paul,1970-01-01,not-an-address,retiree", "email"),
    "markup_in_name": ("100000019,,<b>Durand</b>,Paul,1970-01-01,,retiree", "forbidden"),
    # Well formed (Django's validator admits 320 characters) but longer than the column holds.
    "overlong_email": (
        f"100000020,,Durand,Paul,1970-01-01,{OVERLONG_EMAIL},retiree",
        "email is longer than 254 characters",
    ),
}


def test_bad_rows_are_reported_by_line_and_good_rows_imported(tmp_path: Path) -> None:
    rows = [GOOD[0], *(row for row, _reason in BAD_ROWS.values()), GOOD[1]]
    out, err, failed = run_failing(write_csv(tmp_path, rows))
    assert failed.returncode == 1
    assert f"{len(BAD_ROWS)} row(s) rejected" in str(failed)
    assert f"imported 2 rows; rejected {len(BAD_ROWS)}" in out
    reported = err.strip().splitlines()
    assert len(reported) == len(BAD_ROWS)
    # Line 1 is the header, GOOD[0] line 2: the bad rows are lines 3, 4, ...
    for line, (name, (_row, reason)) in enumerate(BAD_ROWS.items(), start=3):
        assert reported[line - 3].startswith(f"line {line}: "), name
        assert reason in reported[line - 3], name
    # Never half-written: no bad row left a member or a coverage behind.
    assert set(Member.objects.values_list("member_number", flat=True)) == {"100000001", "100000002"}
    assert Coverage.objects.count() == 3


def test_a_bad_re_import_row_leaves_the_existing_member_untouched(tmp_path: Path) -> None:
    run(write_csv(tmp_path, GOOD))
    run_failing(write_csv(tmp_path, ["100000001,,Changed,Zoë,30/02/1990,,retiree"], name="bad.csv"))
    zoe = Member.objects.get(member_number="100000001")
    assert zoe.last_name == "Martin"
    assert kinds("100000001") == {CoverageKind.HEALTH_PRINCIPAL}


def test_dry_run_checks_everything_and_writes_nothing(tmp_path: Path) -> None:
    out, _err = run(write_csv(tmp_path, GOOD), "--dry-run")
    assert "would import 3 rows" in out
    assert not Member.objects.exists()
    _out, err, failed = run_failing(
        write_csv(tmp_path, [GOOD[0], BAD_ROWS["impossible_date"][0]], name="b.csv"), "--dry-run"
    )
    assert failed.returncode == 1 and "line 3:" in err
    assert not Member.objects.exists() and not Coverage.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "member_number,nir,last_name,first_name,birth_date,email",
        "nir,member_number,last_name,first_name,birth_date,email,coverages",
        "id;nir;last_name;first_name;birth_date;email;coverages",
    ],
)
def test_a_wrong_header_is_an_error(tmp_path: Path, header: str) -> None:
    _out, _err, failed = run_failing(write_csv(tmp_path, GOOD, header=header))
    assert "header must be" in str(failed)
    assert failed.returncode == 1
    assert not Member.objects.exists()


def test_an_empty_or_missing_or_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in str(run_failing(empty)[2])
    assert "cannot open" in str(run_failing(tmp_path / "missing.csv")[2])
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(f"{HEADER}\n100000001,,Martin,Zoë,1980-04-12,,retiree\n".encode("latin-1"))
    assert "UTF-8" in str(run_failing(latin1)[2])
    assert not Member.objects.exists()


def test_a_large_file_is_written_in_batches(tmp_path: Path) -> None:
    """20,000 rows: statements grow with the number of batches, not with the number of rows."""
    rows, batch = 20_000, 1000
    path = tmp_path / "large.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER + "\n")
        for n in range(rows):
            handle.write(f"M{n:08d},,Nom{n % 97},Prénom,1970-01-01,,health_principal;retiree\n")
    with CaptureQueriesContext(connection) as queries:
        out, _err = run(path, "--batch-size", str(batch))
    assert f"imported {rows} rows" in out
    assert Member.objects.count() == rows
    assert Coverage.objects.count() == 2 * rows

    statements = Counter(" ".join(q["sql"].split()[:3]) for q in queries.captured_queries)
    batches = rows // batch
    member_inserts = statements['INSERT INTO "members_member"']
    coverage_inserts = statements['INSERT INTO "members_coverage"']
    # At most one coverage replacement per batch (none on PostgreSQL, which knows the members
    # it has just inserted hold no coverage)...
    expected_deletes = 0 if connection.vendor == "postgresql" else batches
    assert statements['DELETE FROM "members_coverage"'] == expected_deletes
    # ...and the same handful of multi-row INSERTs for every batch (the database's parameter
    # limit may split a batch), never one per row.
    assert member_inserts % batches == 0 and coverage_inserts % batches == 0
    assert member_inserts // batches <= 20 and coverage_inserts // batches <= 20
    assert len(queries.captured_queries) < rows / 25


@pytest.mark.parametrize("column", ["last_name", "first_name", "email"])
def test_a_lone_surrogate_is_a_row_error_not_a_database_error(column: str) -> None:
    """No file decodes to one, but the parser is shared with the API: it refuses it itself."""
    record = dict(zip(HEADER.split(","), GOOD[0].split(","), strict=True))
    record[column] += "\ud800"
    with pytest.raises(RowError, match=r"forbidden characters|not a valid address"):
        parse_member_row(7, record)
