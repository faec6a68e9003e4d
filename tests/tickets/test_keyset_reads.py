"""Keyset chunks (core/keyset.py): every row once, in order, across ties and chunk boundaries,
for the CSV exports and `verify_history` alike."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.utils import timezone

from core.keyset import keyset_objects, keyset_values
from members.models import Account
from tests.factories import TicketFactory
from tickets.management.commands.verify_history import history_breaks
from tickets.models import Ticket, TicketEvent
from tickets.services import ticket_claim, ticket_note, ticket_release

pytestmark = pytest.mark.django_db


def test_keyset_chunks_return_every_row_once_in_order_even_when_keys_tie() -> None:
    same = timezone.now() - datetime.timedelta(days=1)
    for index in range(9):  # three tickets share each instant: the id breaks the tie
        TicketFactory(created_at=same + datetime.timedelta(seconds=index // 3))
    expected = list(Ticket.objects.order_by("created_at", "id").values_list("reference"))
    for chunk_size in (1, 2, 3, 4, 100):
        got = list(
            keyset_values(
                Ticket.objects.all(), ["reference"], key=("created_at", "id"), chunk_size=chunk_size
            )
        )
        assert got == expected, chunk_size
    objects = keyset_objects(Ticket.objects.all(), key=("created_at", "id"), chunk_size=2)
    assert [(t.reference,) for t in objects] == expected


def test_verify_history_checks_chains_that_span_chunk_boundaries(agent: Account) -> None:
    tickets = [TicketFactory() for _ in range(3)]
    for ticket in tickets:
        ticket_claim(reference=ticket.reference, actor=agent)
        ticket_note(reference=ticket.reference, actor=agent, body="checked")
        ticket_release(reference=ticket.reference, actor=agent)
    assert TicketEvent.objects.count() >= 9
    assert history_breaks(chunk_size=2) == {}

    # Edit a row in the middle of the second ticket's chain: only that ticket is named.
    middle = TicketEvent.objects.filter(ticket=tickets[1]).order_by("created_at", "id")[1]
    with connection.cursor() as cursor:  # past the append-only trigger, as an intruder would
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE tickets_ticketevent SET reason = 'rewritten' WHERE id = %s", [middle.pk]
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    for chunk_size in (1, 2, 5, 2000):
        assert list(history_breaks(chunk_size=chunk_size)) == [tickets[1].pk], chunk_size
