"""Personal data masked on desk pages; every look at a member's file in an append-only journal."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import URLPattern, get_resolver
from django.utils import timezone

from members.models import AccessJournalEntry, AccessKind, Account, AppendOnlyError, RevealReason
from members.services.access_journal import access_record
from tests.factories import MemberFactory, StaffFactory, TicketFactory
from tests.second_factor import staff_login
from workflows.services.retention import retention_purge

pytestmark = pytest.mark.django_db

NIR = "180047512345661"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def ticket() -> Any:
    member = MemberFactory(nir=NIR, birth_date=dt.date(1980, 4, 12))
    return TicketFactory(member=member, submitted_nir=NIR)


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


# --- masking ----------------------------------------------------------------------------------


def test_ticket_page_masks_nir_and_birth_date_but_says_whether_they_match(
    agent_client: Client, ticket: Any
) -> None:
    page = _page(agent_client, f"/desk/tickets/{ticket.reference}/")
    assert NIR not in page and "12/04/1980" not in page
    assert "••••••••••••661" in page and "••/••/1980" in page
    assert f'action="/desk/tickets/{ticket.reference}/reveal/"' in page


def test_ticket_page_without_registry_match_masks_what_was_typed(agent_client: Client) -> None:
    ticket = TicketFactory(member=None, submitted_nir=NIR, match_result="no_match")
    page = _page(agent_client, f"/desk/tickets/{ticket.reference}/")
    assert NIR not in page and "01/01/1970" not in page
    assert "••••••••••••661" in page and "••/••/1970" in page


def test_registry_record_and_search_results_mask_nir_and_birth_date(agent_client: Client) -> None:
    member = MemberFactory(nir=NIR, birth_date=dt.date(1980, 4, 12))
    record = _page(agent_client, f"/desk/members/{member.member_number}/")
    assert NIR not in record and "12/04/1980" not in record
    assert "••••••••••••661" in record and "••/••/1980" in record
    results = _page(agent_client, f"/desk/members/?q={member.member_number}")
    assert member.member_number in results
    assert NIR not in results and "12/04/1980" not in results and "••/••/1980" in results


def test_a_reveal_with_a_listed_reason_shows_the_data_for_a_few_minutes(
    agent_client: Client, ticket: Any, agent: Account
) -> None:
    url = f"/desk/tickets/{ticket.reference}/"
    response = agent_client.post(f"{url}reveal/", {"reason": RevealReason.MEMBER_ON_PHONE})
    assert response.status_code == 302 and response["Location"] == url
    page = _page(agent_client, url)
    assert NIR in page and "12/04/1980" in page
    reveal = AccessJournalEntry.objects.get(kind=AccessKind.REVEAL)
    assert (reveal.actor, reveal.member_id, reveal.ticket_reference, reveal.reason) == (
        agent,
        ticket.member_id,
        ticket.reference,
        RevealReason.MEMBER_ON_PHONE,
    )
    # Another record stays masked; after five minutes this one is masked again.
    other = MemberFactory(nir="280047512345699")
    assert "280047512345699" not in _page(agent_client, f"/desk/members/{other.member_number}/")
    later = timezone.now() + dt.timedelta(minutes=6)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: later)
        assert NIR not in _page(agent_client, url)


def test_a_reveal_on_a_registry_record_takes_free_text(agent_client: Client) -> None:
    member = MemberFactory(nir=NIR)
    url = f"/desk/members/{member.member_number}/"
    agent_client.post(
        f"{url}reveal/", {"reason": RevealReason.OTHER, "reason_text": "courrier du 3 déc."}
    )
    assert NIR in _page(agent_client, url)
    reveal = AccessJournalEntry.objects.get(kind=AccessKind.REVEAL)
    assert (reveal.member_id, reveal.reason_text) == (member.pk, "courrier du 3 déc.")


@pytest.mark.parametrize(
    "data", [{}, {"reason": "curiosity"}, {"reason": RevealReason.OTHER, "reason_text": "  "}]
)
def test_a_reveal_without_a_reason_is_refused_and_reveals_nothing(
    agent_client: Client, ticket: Any, data: dict[str, str]
) -> None:
    url = f"/desk/tickets/{ticket.reference}/"
    agent_client.post(f"{url}reveal/", data)
    page = _page(agent_client, url)
    assert NIR not in page and "Choose why you need to see the data" in page
    assert not AccessJournalEntry.objects.filter(kind=AccessKind.REVEAL).exists()


def test_a_reveal_needs_post_csrf_and_staff(
    agent: Account, ticket: Any, member_client: Client
) -> None:
    url = f"/desk/tickets/{ticket.reference}/reveal/"
    strict = staff_login(Client(enforce_csrf_checks=True), agent)
    assert strict.post(url, {"reason": RevealReason.IDENTITY_CHECK}).status_code == 403
    assert strict.get(url).status_code == 405
    assert member_client.post(url, {"reason": RevealReason.IDENTITY_CHECK}).status_code == 403
    assert not AccessJournalEntry.objects.filter(kind=AccessKind.REVEAL).exists()


# --- the journal: one row per look ----------------------------------------------------------------

# Every desk URL, by name: the ones that show a member's file (each must write one row) and
# the others, with why they do not. A new URL fails this test until it is placed here.
SHOWS_A_MEMBER = {
    "desk_ticket": AccessKind.TICKET_VIEW,
    "desk_member": AccessKind.MEMBER_VIEW,
    "desk_members": AccessKind.REGISTRY_SEARCH,
    "desk_ticket_reveal": AccessKind.REVEAL,
    "desk_member_reveal": AccessKind.REVEAL,
}
NO_MEMBER_FILE = {
    "desk_login", "desk_logout", "desk_second_factor",
    # Staff accounts and their second factor: no member's data.
    "supervision_staff", "supervision_second_factor_reset",
    # Work lists: reference, kind, state and the typed name, never NIR or birth date; opening a
    # ticket from them is the look that is journaled.
    "desk_queue", "supervision_queue",
    "desk_ticket_new",  # an empty form
    "desk_ticket_action",  # POST actions, recorded in the ticket's history
    "supervision", "supervision_reassign", "supervision_release_stale", "supervision_audit",
    # Exports carry no NIR, birth date or names (supervision/exports.py).
    "supervision_export_queue", "supervision_export_audit", "supervision_export_access_journal",
}  # fmt: skip


def _desk_url_names() -> set[str]:
    names = set()
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern) and str(pattern.pattern).lstrip("^").startswith("desk/"):
            names.add(pattern.name or "")
    return names


def test_every_desk_url_is_either_journaled_or_shows_no_members_file() -> None:
    assert _desk_url_names() == set(SHOWS_A_MEMBER) | NO_MEMBER_FILE


def _requests(ticket: Any) -> dict[str, tuple[str, str, dict[str, str]]]:
    number = ticket.member.member_number
    return {
        "desk_ticket": ("get", f"/desk/tickets/{ticket.reference}/", {}),
        "desk_member": ("get", f"/desk/members/{number}/", {}),
        "desk_members": ("get", "/desk/members/", {"q": number}),
        "desk_ticket_reveal": (
            "post",
            f"/desk/tickets/{ticket.reference}/reveal/",
            {"reason": RevealReason.IDENTITY_CHECK},
        ),
        "desk_member_reveal": (
            "post",
            f"/desk/members/{number}/reveal/",
            {"reason": RevealReason.REGISTRY_CORRECTION},
        ),
    }


@pytest.mark.parametrize("name", sorted(SHOWS_A_MEMBER))
def test_each_desk_url_showing_a_member_writes_exactly_one_journal_row(
    name: str, agent_client: Client, agent: Account, ticket: Any
) -> None:
    method, url, data = _requests(ticket)[name]
    response = getattr(agent_client, method)(url, data)
    assert response.status_code in (200, 302)
    rows = list(AccessJournalEntry.objects.all())
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor, row.kind) == (agent, SHOWS_A_MEMBER[name])
    if name != "desk_members":
        assert row.member_id == ticket.member_id
    if name.startswith("desk_ticket"):
        assert row.ticket_reference == ticket.reference


def test_the_journal_keeps_who_what_and_when_never_the_data(
    agent_client: Client, ticket: Any
) -> None:
    for method, url, data in _requests(ticket).values():
        getattr(agent_client, method)(url, data)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM members_accessjournalentry")
        cells = " ".join(str(cell) for row in cursor.fetchall() for cell in row)
    member = ticket.member
    for secret in (NIR, member.last_name, member.email, "1980-04-12", member.member_number):
        assert secret not in cells


def test_the_ticket_page_pays_one_insert_for_its_journal_row(
    agent_client: Client, ticket: Any
) -> None:
    from django.test.utils import CaptureQueriesContext

    url = f"/desk/tickets/{ticket.reference}/"
    agent_client.get(url)
    with CaptureQueriesContext(connection) as captured:
        agent_client.get(url)
    inserts = [q["sql"] for q in captured if "members_accessjournalentry" in q["sql"]]
    assert len(inserts) == 1 and inserts[0].startswith("INSERT")


# --- append-only, retention, export -----------------------------------------------------------


def test_the_orm_refuses_to_edit_or_delete_journal_rows(agent: Account) -> None:
    row = access_record(actor=agent, kind=AccessKind.MEMBER_VIEW)
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AccessJournalEntry.objects.filter(pk=row.pk).update(kind=AccessKind.REVEAL)
    with pytest.raises(AppendOnlyError):
        AccessJournalEntry.objects.all().delete()


def test_postgresql_refuses_raw_update_and_delete_on_the_journal(agent: Account) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    row = access_record(actor=agent, kind=AccessKind.MEMBER_VIEW)
    for sql in (
        "UPDATE members_accessjournalentry SET kind = 'reveal' WHERE id = %s",
        "DELETE FROM members_accessjournalentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [row.pk])
    assert AccessJournalEntry.objects.get(pk=row.pk).kind == AccessKind.MEMBER_VIEW


def test_retention_deletes_journal_rows_older_than_the_setting_only(
    agent: Account, settings: Any
) -> None:
    settings.GUICHET_ACCESS_JOURNAL_DAYS = 365
    settings.GUICHET_RETENTION_BATCH = 2
    now = timezone.now()
    old = [
        AccessJournalEntry.objects.create(
            actor=agent, kind=AccessKind.TICKET_VIEW, created_at=now - dt.timedelta(days=366)
        )
        for _ in range(3)
    ]
    kept = access_record(actor=agent, kind=AccessKind.TICKET_VIEW)
    assert retention_purge(now=now)["access_journal_deleted"] == len(old)
    assert list(AccessJournalEntry.objects.values_list("pk", flat=True)) == [kept.pk]


def test_supervisors_export_the_journal_as_a_streamed_csv_in_keyset_chunks(
    supervisor_client: Client, agent_client: Client, agent: Account, monkeypatch: Any
) -> None:
    from supervision import exports

    monkeypatch.setattr(exports, "CHUNK_SIZE", 2)
    member = MemberFactory(nir=NIR)
    for kind in (AccessKind.MEMBER_VIEW, AccessKind.TICKET_VIEW, AccessKind.MEMBER_VIEW):
        access_record(actor=agent, kind=kind, member_id=member.pk)
    access_record(
        actor=agent,
        kind=AccessKind.REVEAL,
        member_id=member.pk,
        reason=RevealReason.OTHER,
        reason_text="=HYPERLINK()",
    )
    url = "/desk/supervisor/export/access-journal.csv"
    assert agent_client.get(url).status_code == 403
    response = supervisor_client.get(url)
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["kind"] for r in rows] == ["member_view", "ticket_view", "member_view", "reveal"]
    assert {r["actor"] for r in rows} == {agent.username}
    assert {r["member"] for r in rows} == {member.member_number}
    assert rows[-1]["reason_text"] == "'=HYPERLINK()"
    assert NIR not in str(rows)


# --- the admin shows members' files too (superusers only): each look is journaled -------------


@pytest.fixture
def superuser(db: None) -> Account:
    root: Account = StaffFactory(username="root", is_superuser=True)
    return root


def test_a_superuser_opening_a_member_or_a_ticket_in_the_admin_is_journaled(
    superuser: Account, ticket: Any
) -> None:
    client = staff_login(Client(), superuser)
    member = ticket.member
    assert client.get(f"/admin/members/member/{member.pk}/change/").status_code == 200
    assert client.get(f"/admin/tickets/ticket/{ticket.pk}/change/").status_code == 200
    assert client.get("/admin/members/member/", {"q": member.member_number}).status_code == 200
    rows = [
        (row.actor, row.kind, row.member_id, row.ticket_reference, row.reason_text)
        for row in AccessJournalEntry.objects.order_by("pk")
    ]
    assert rows == [
        (superuser, AccessKind.MEMBER_VIEW, member.pk, "", "admin"),
        (superuser, AccessKind.TICKET_VIEW, member.pk, ticket.reference, "admin"),
        (superuser, AccessKind.REGISTRY_SEARCH, None, "", "admin"),
    ]


def test_an_unknown_member_in_the_admin_journals_nothing(superuser: Account) -> None:
    client = staff_login(Client(), superuser)
    assert client.get("/admin/members/member/999999/change/").status_code == 302
    assert not AccessJournalEntry.objects.exists()
