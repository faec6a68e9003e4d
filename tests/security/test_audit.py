"""docs/security.md §29-30: every action leaves one record; history is append-only, verifiable."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from core.logging import ControlCharacterFilter
from members.models import Account
from tests.factories import StaffFactory, TicketFactory
from tests.second_factor import staff_login
from tickets.models import AppendOnlyError, EventKind, Ticket, TicketEvent
from tickets.services import ticket_claim, ticket_note, ticket_release
from workflows.services.decisions import ticket_confirm, ticket_reject

pytestmark = pytest.mark.django_db


def _kinds(ticket: Ticket) -> list[str]:
    return list(TicketEvent.objects.filter(ticket=ticket).values_list("kind", flat=True))


def test_claim_release_note_and_confirm_each_leave_one_history_row(agent: Account) -> None:
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent, request_id="req-1")
    ticket_release(reference=ticket.reference, actor=agent)
    ticket_note(reference=ticket.reference, actor=agent, body="called the member")
    ticket_confirm(reference=ticket.reference, actor=agent, request_id="req-2")
    events = list(TicketEvent.objects.filter(ticket=ticket))
    assert [e.kind for e in events[:3]] == [EventKind.CLAIM, EventKind.RELEASE, EventKind.NOTE]
    transition = next(e for e in events if e.kind == EventKind.TRANSITION)
    assert (transition.from_state, transition.to_state) == ("pending", "confirmed")
    assert transition.actor == agent
    assert transition.request_id == "req-2"
    assert transition.created_at.utcoffset().total_seconds() == 0
    assert events[0].request_id == "req-1"


def test_a_refused_desk_action_is_in_the_history_and_the_log(
    agent_client: Client, agent: Account, second_agent: Account, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = TicketFactory()
    ticket_reject(reference=ticket.reference, actor=second_agent, reason="duplicate")
    with caplog.at_level(logging.INFO, logger="guichet.security"):
        response = agent_client.post(f"/desk/tickets/{ticket.reference}/confirm/")
    assert response.status_code == 302
    refused = TicketEvent.objects.filter(ticket=ticket, kind=EventKind.REFUSED).get()
    assert refused.actor == agent
    assert refused.reason == "already_decided"
    assert any(
        "refused" in r.getMessage() and ticket.reference in r.getMessage() for r in caplog.records
    )


def test_member_login_success_and_failure_are_logged(
    member_account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="guichet.auth"):
        Client().post("/login/", {"username": member_account.username, "password": "wrong one"})
        Client().post(
            "/login/",
            {"username": member_account.username, "password": "a long member passphrase"},
        )
    messages = [r.getMessage() for r in caplog.records if r.name == "guichet.auth"]
    assert any("failed" in m for m in messages)
    assert any("ok" in m and str(member_account.pk) in m for m in messages)
    assert not any("a long member passphrase" in m or "wrong one" in m for m in messages)


def test_desk_login_success_and_failure_are_logged(
    agent: Account, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="guichet.auth"):
        Client().post("/desk/login/", {"username": agent.username, "password": "not it at all"})
        Client().post(
            "/desk/login/", {"username": agent.username, "password": "staff password 123"}
        )
    messages = [r.getMessage() for r in caplog.records if r.name == "guichet.auth"]
    assert any("desk login failed" in m for m in messages)
    assert any("desk login ok" in m and str(agent.pk) in m for m in messages)
    assert not any("staff password 123" in m or "not it at all" in m for m in messages)


def test_refused_access_is_logged(
    member_client: Client, member_account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="guichet.security"):
        response = member_client.get("/desk/")
    assert response.status_code == 403
    assert any(
        "refused" in r.getMessage() and str(member_account.pk) in r.getMessage()
        for r in caplog.records
    )


def test_history_refuses_orm_update_and_delete(agent: Account) -> None:
    ticket = TicketFactory()
    event = ticket_note(reference=ticket.reference, actor=agent, body="original")
    with pytest.raises(AppendOnlyError):
        TicketEvent.objects.filter(pk=event.pk).update(body="changed")
    with pytest.raises(AppendOnlyError):
        TicketEvent.objects.filter(pk=event.pk).delete()
    event.body = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert TicketEvent.objects.get(pk=event.pk).body == "original"


def _tamper(event_id: int, body: str) -> None:
    """What a database superuser could do (PostgreSQL: triggers bypassed by replica role)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE tickets_ticketevent SET body = %s WHERE id = %s", [body, event_id])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_verify_history_passes_on_an_untouched_chain(
    agent: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    ticket = TicketFactory()
    ticket_claim(reference=ticket.reference, actor=agent)
    ticket_note(reference=ticket.reference, actor=agent, body="Zoë\r\nforged line")
    ticket_confirm(reference=ticket.reference, actor=agent)
    call_command("verify_history")
    assert "History intact" in capsys.readouterr().out


def test_verify_history_names_the_ticket_whose_history_was_edited(
    agent: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    intact, tampered = TicketFactory(), TicketFactory()
    for ticket in (intact, tampered):
        ticket_note(reference=ticket.reference, actor=agent, body="first")
        ticket_note(reference=ticket.reference, actor=agent, body="second")
    victim = TicketEvent.objects.filter(ticket=tampered).first()
    assert victim is not None
    _tamper(victim.pk, "nothing happened here")
    with pytest.raises(CommandError) as failure:
        call_command("verify_history")
    assert failure.value.returncode == 1
    err = capsys.readouterr().err
    assert tampered.reference in err
    assert intact.reference not in err


def test_verify_history_detects_a_removed_row(agent: Account) -> None:
    ticket = TicketFactory()
    for body in ("one", "two", "three"):
        ticket_note(reference=ticket.reference, actor=agent, body=body)
    middle = TicketEvent.objects.filter(ticket=ticket)[1]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM tickets_ticketevent WHERE id = %s", [middle.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError):
        call_command("verify_history", ticket.reference)


def test_postgresql_refuses_raw_update_and_delete_on_history(agent: Account) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    from django.db import DatabaseError, transaction

    ticket = TicketFactory()
    event = ticket_note(reference=ticket.reference, actor=agent, body="original")
    for sql in (
        "UPDATE tickets_ticketevent SET body = 'x' WHERE id = %s",
        "DELETE FROM tickets_ticketevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert TicketEvent.objects.get(pk=event.pk).body == "original"


def test_control_characters_are_encoded_in_log_lines() -> None:
    record = logging.LogRecord(
        "guichet.auth",
        logging.INFO,
        __file__,
        1,
        "login failed username=%s",
        ("Zoë\r\nFAKE ok",),
        None,
    )
    ControlCharacterFilter().filter(record)
    line = record.getMessage()
    assert "\r" not in line and "\n" not in line
    assert "Zoë\\x0d\\x0aFAKE ok" in line


# --- the admin: superusers only, read-only, no secrets ---------------------------------------


@pytest.fixture
def superuser_client(db: None) -> Client:
    root = StaffFactory(username="root", is_superuser=True)
    client = Client()
    staff_login(client, root)
    return client


def test_agents_and_supervisors_cannot_open_the_admin(
    agent_client: Client, supervisor_client: Client
) -> None:
    for client in (agent_client, supervisor_client):
        response = client.get("/admin/tickets/ticketevent/")
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_admin_history_is_read_only_even_for_a_superuser(
    superuser_client: Client, agent: Account
) -> None:
    ticket = TicketFactory()
    event = ticket_note(reference=ticket.reference, actor=agent, body="original")
    assert superuser_client.get("/admin/tickets/ticketevent/").status_code == 200
    page = superuser_client.get(f"/admin/tickets/ticketevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="body"' not in page.content  # displayed, not editable
    posted = superuser_client.post(f"/admin/tickets/ticketevent/{event.pk}/change/", {"body": "x"})
    assert posted.status_code == 403
    assert (
        superuser_client.post(
            f"/admin/tickets/ticketevent/{event.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert superuser_client.get("/admin/tickets/ticketevent/add/").status_code == 403
    assert TicketEvent.objects.get(pk=event.pk).body == "original"


def test_every_model_is_in_the_admin_without_its_secrets(
    superuser_client: Client, member_account: Account
) -> None:
    from django.apps import apps
    from django.contrib import admin

    from members.secret_answers import secret_answer_hash

    member_account.secret_answer_hash = secret_answer_hash("my first cat")
    member_account.save()
    TicketFactory()
    for label in ("members", "tickets", "workflows"):
        for model in apps.get_app_config(label).get_models():
            assert admin.site.is_registered(model), model
    account_page = superuser_client.get(f"/admin/members/account/{member_account.pk}/change/")
    assert account_page.status_code == 200
    body = account_page.content.decode()
    assert member_account.password not in body
    assert member_account.password.split("$")[-1] not in body
    assert member_account.secret_answer_hash.split("$")[-1] not in body
    for label in ("members", "tickets", "workflows"):
        for model in apps.get_app_config(label).get_models():
            listing = superuser_client.get(f"/admin/{label}/{model._meta.model_name}/")
            assert listing.status_code == 200, model
