"""Queues, filters and search on the desk: accents, case, prefixes, identifiers, paging."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from members.models import Account
from tests.factories import MemberFactory, TicketFactory
from tickets.filters import TicketFilter
from tickets.models import Channel, Ticket, TicketKind, TicketState
from tickets.selectors import decode_cursor, keyset_page, queue_tickets

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """Assertions read the English msgids; the site's default language is French."""
    settings.LANGUAGE_CODE = "en"


def _refs(data: dict[str, str], user: Account | None = None) -> set[str]:
    request = RequestFactory().get("/desk/", data)
    if user is not None:
        request.user = user
    filterset = TicketFilter(request.GET, queryset=Ticket.objects.all(), request=request)
    return set(filterset.qs.values_list("reference", flat=True))


def _ticket(last: str = "Martin", first: str = "Zoë", **kwargs: object) -> Ticket:
    return TicketFactory(submitted_last_name=last, submitted_first_name=first, **kwargs)


def _set(ticket: Ticket, **fields: object) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    ticket.refresh_from_db()
    return ticket


class TestNameSearch:
    def test_it_ignores_accents_and_case(self) -> None:
        lefevre = _ticket("Lefèvre")
        _ticket("Martin")
        assert _refs({"q": "LEFEVRE"}) == {lefevre.reference}
        assert _refs({"q": "léfèvre"}) == {lefevre.reference}

    def test_it_matches_a_prefix_of_the_last_name_only(self) -> None:
        lefevre, lefebvre = _ticket("Lefèvre"), _ticket("Lefebvre")
        _ticket("Delefe")
        assert _refs({"q": "lefe"}) == {lefevre.reference, lefebvre.reference}
        assert _refs({"q": "lefev"}) == {lefevre.reference}

    def test_hyphens_apostrophes_and_ligatures_fold(self) -> None:
        dangelo = _ticket("D'Angelo")
        oeuvre = _ticket("Lœuvre")
        assert _refs({"q": "d angelo"}) == {dangelo.reference}
        assert _refs({"q": "loeuv"}) == {oeuvre.reference}

    def test_last_comma_first_narrows_by_first_name(self) -> None:
        zoe = _ticket("Martin", "Zoë")
        _ticket("Martin", "Jean")
        assert _refs({"q": "martin, zo"}) == {zoe.reference}

    def test_first_then_last_finds_the_person(self) -> None:
        zoe = _ticket("Martin", "Zoë")
        _ticket("Martin", "Jean")
        assert _refs({"q": "Zoe Mart"}) == {zoe.reference}

    def test_a_search_without_a_queue_looks_at_every_state(self) -> None:
        decided = _set(_ticket("Lefèvre"), state=TicketState.CONFIRMED)
        assert _refs({"q": "lefevre"}) == {decided.reference}
        assert _refs({"q": "lefevre", "queue": "open"}) == set()

    def test_punctuation_only_finds_nothing_and_does_not_fail(self, agent_client: Client) -> None:
        _ticket("Martin")
        assert _refs({"q": "'-"}) == set()
        assert agent_client.get("/desk/", {"q": "%_'\"<>"}).status_code == 200


class TestIdentifierSearch:
    def test_reference_in_any_case(self) -> None:
        ticket, _other = _ticket(), _ticket()
        assert _refs({"q": ticket.reference.lower()}) == {ticket.reference}

    def test_member_id_typed_or_matched(self) -> None:
        member = MemberFactory(member_number="123456789")
        typed = _ticket(member=None, submitted_member_number="123456789")
        matched = _ticket(member=member, submitted_member_number="")
        _ticket()
        assert _refs({"q": " 123456789 "}) == {typed.reference, matched.reference}

    def test_nir_with_spaces(self) -> None:
        member = MemberFactory(nir="180047512345661")
        by_registry = _ticket(member=member, submitted_nir="")
        typed = _ticket(member=None, submitted_nir="180047512345661")
        assert _refs({"q": "1 80 04 75 123 456 61"}) == {by_registry.reference, typed.reference}

    def test_email_case_insensitively(self) -> None:
        ticket = _ticket(submitted_email="Zoe.Martin@Example.org")
        _ticket()
        assert _refs({"q": "zoe.martin@EXAMPLE.ORG"}) == {ticket.reference}


class TestQueues:
    def test_default_queue_is_all_open(self) -> None:
        pending = _ticket()
        mismatch = _set(_ticket(), state=TicketState.IDENTITY_MISMATCH)
        _set(_ticket(), state=TicketState.REJECTED)
        assert _refs({}) == {pending.reference, mismatch.reference}

    def test_mine_unassigned_and_mismatch(self, agent: Account, second_agent: Account) -> None:
        mine = _ticket(assignee=agent)
        _ticket(assignee=second_agent)
        free = _ticket()
        mismatch = _set(_ticket(), state=TicketState.IDENTITY_MISMATCH)
        _set(_ticket(assignee=agent), state=TicketState.CONFIRMED)
        assert _refs({"queue": "mine"}, user=agent) == {mine.reference}
        assert _refs({"queue": "unassigned"}) == {free.reference, mismatch.reference}
        assert _refs({"queue": "mismatch"}) == {mismatch.reference}

    def test_decided_today(self) -> None:
        today = _set(_ticket(), state=TicketState.CONFIRMED, decided_at=timezone.now())
        _set(
            _ticket(),
            state=TicketState.REJECTED,
            decided_at=timezone.now() - datetime.timedelta(days=2),
        )
        assert _refs({"queue": "decided_today"}) == {today.reference}

    def test_unknown_queue_falls_back_to_all_open(self) -> None:
        pending = _ticket()
        assert _refs({"queue": "nonsense"}) == {pending.reference}


class TestFilters:
    def test_state_kind_channel_and_assignee(self, agent: Account) -> None:
        phone = _ticket(kind=TicketKind.RECOVERY, channel=Channel.PHONE, assignee=agent)
        _ticket()
        assert _refs({"kind": "REC"}) == {phone.reference}
        assert _refs({"channel": "phone"}) == {phone.reference}
        assert _refs({"assignee": str(agent.pk)}) == {phone.reference}
        assert _refs({"state": "identity_mismatch"}) == set()

    def test_age_buckets(self) -> None:
        now = timezone.now()
        fresh = _ticket()
        old = _set(_ticket(), created_at=now - datetime.timedelta(days=4))
        assert _refs({"age": "lt1h"}) == {fresh.reference}
        assert _refs({"age": "gt3d"}) == {old.reference}
        assert _refs({"age": "1d-3d"}) == set()

    @override_settings(
        GUICHET_TARGET_BUSINESS_HOURS={"REG": 48, "REC": 2},
        # Open around the clock, so the test does not depend on today's weekday or hour.
        GUICHET_BUSINESS_HOURS={
            "timezone": "UTC",
            "weekdays": [0, 1, 2, 3, 4, 5, 6],
            "opens": "00:00",
            "closes": "23:59:59.999999",
        },
        GUICHET_PUBLIC_HOLIDAYS=[],
        GUICHET_HOLIDAYS_COUNTRY="",
    )
    def test_over_target_time_is_per_kind(self) -> None:
        now = timezone.now()
        late_recovery = _set(
            _ticket(kind=TicketKind.RECOVERY), created_at=now - datetime.timedelta(hours=3)
        )
        _set(_ticket(kind=TicketKind.REGISTRATION), created_at=now - datetime.timedelta(hours=3))
        _set(
            _ticket(kind=TicketKind.RECOVERY),
            created_at=now - datetime.timedelta(hours=30),
            state=TicketState.CONFIRMED,
        )
        assert _refs({"overdue": "on"}) == {late_recovery.reference}

    def test_bad_values_are_ignored_not_a_500(self, agent_client: Client) -> None:
        ticket = _ticket()
        assert _refs({"kind": "XXX", "assignee": "abc", "age": "forever"}) == {ticket.reference}
        response = agent_client.get(
            "/desk/", {"assignee": "99999", "state": "nope", "after": "x~y", "sort": "id;drop"}
        )
        assert response.status_code == 200
        assert ticket.reference in response.content.decode()


class TestKeysetPaging:
    def test_pages_follow_each_other_without_overlap(self) -> None:
        start = timezone.now() - datetime.timedelta(days=1)
        tickets = [_set(_ticket(), created_at=start) for _ in range(3)]  # equal times: tie on id
        tickets += [
            _set(_ticket(), created_at=start + datetime.timedelta(minutes=n)) for n in range(4)
        ]
        first = keyset_page(queue_tickets(), per_page=3)
        second = keyset_page(queue_tickets(), per_page=3, after=first.next_cursor)
        third = keyset_page(queue_tickets(), per_page=3, after=second.next_cursor)
        seen = [t.reference for page in (first, second, third) for t in page.rows]
        assert seen == [t.reference for t in tickets]
        assert third.next_cursor == ""
        back = keyset_page(queue_tickets(), per_page=3, before=third.previous_cursor)
        assert [t.reference for t in back.rows] == [t.reference for t in second.rows]

    def test_name_search_pages_in_name_then_age_order(self, agent_client: Client) -> None:
        start = timezone.now() - datetime.timedelta(days=1)
        names = ["Martinez", "Martin", "Martin", "Martineau", "Martín", "Martin"]
        tickets = [
            _set(_ticket(name), created_at=start + datetime.timedelta(minutes=n))
            for n, name in enumerate(names)
        ]
        _ticket("Marty")
        expected = [t.reference for t in sorted(tickets, key=lambda t: (t.last_name_key, t.pk))]
        request = RequestFactory().get("/desk/", {"q": "MARTIN"})
        filterset = TicketFilter(request.GET, queryset=queue_tickets(), request=request)
        assert filterset.is_name_search
        seen, after = [], ""
        for _ in range(3):
            page = keyset_page(filterset.qs, sort="name", per_page=2, after=after)
            seen += [t.reference for t in page.rows]
            after = page.next_cursor
        assert seen == expected and after == ""
        body = agent_client.get("/desk/", {"q": "martin"}).content.decode()
        assert [body.index(ref) for ref in expected] == sorted(body.index(r) for r in expected)

    def test_a_name_ending_in_the_last_code_point_does_not_fail(self) -> None:
        assert _refs({"q": "a\U0010ffff"}) == set()

    def test_newest_first(self) -> None:
        old, new = _ticket(), _ticket()
        _set(old, created_at=timezone.now() - datetime.timedelta(hours=1))
        page = keyset_page(queue_tickets(), sort="-created_at")
        assert [t.reference for t in page.rows] == [new.reference, old.reference]

    @pytest.mark.parametrize("raw", ["", "x", "2024-01-01~", "2024-01-01T00:00~1", "nope~12"])
    def test_malformed_cursors_mean_the_first_page(self, raw: str) -> None:
        assert decode_cursor(raw) is None

    def test_next_link_on_the_queue_page(self, agent_client: Client) -> None:
        for _ in range(51):
            _ticket()
        page = agent_client.get("/desk/").content.decode()
        assert 'rel="next"' in page
        oldest_first = list(Ticket.objects.order_by("created_at", "id"))
        assert page.index(oldest_first[0].reference) < page.index(oldest_first[1].reference)
