"""Overload: when every hash slot is busy, public-form POSTs get 503 + Retry-After at once.

The page is translated and says nothing was recorded; nothing is stored; desk pages and GETs
keep working; the slots are shared by every process of the node (file locks), so holding them
from this test process is what a saturated node looks like. docs/operations.md, "Overload".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.test import Client, override_settings

from core.shedding import hash_slot
from tests.factories import MemberFactory
from tests.requests import registration_form as registration_data
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _slots(tmp_path: Path) -> Iterator[None]:
    with override_settings(GUICHET_HASH_CONCURRENCY=2, GUICHET_SHED_DIR=str(tmp_path / "shed")):
        yield


def _saturate(stack: ExitStack) -> None:
    """Take every slot, as two requests hashing in other workers would."""
    for _ in range(2):
        assert stack.enter_context(hash_slot()) is True
    assert stack.enter_context(hash_slot()) is False


def test_a_saturated_node_sheds_public_posts_fast_with_retry_after() -> None:
    Client().get("/register/")  # warm: templates and URLs loaded, as on a running node
    with ExitStack() as busy:
        _saturate(busy)
        started = time.perf_counter()
        response = Client().post("/register/", registration_data(), HTTP_ACCEPT_LANGUAGE="fr")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert elapsed < 1.0  # answered at once: the view (and its hash) never ran
    page = response.content.decode()
    assert "Trop de demandes en ce moment" in page
    assert "Rien n\u2019a été enregistré" in page
    assert Ticket.objects.count() == 0


def test_english_members_read_the_page_in_english() -> None:
    with ExitStack() as busy:
        _saturate(busy)
        response = Client().post(
            "/login/", {"username": "x", "password": "y"}, HTTP_ACCEPT_LANGUAGE="en"
        )
    assert response.status_code == 503
    assert "Too many requests at the moment" in response.content.decode()


def test_desk_pages_and_public_gets_keep_working_while_saturated(agent_client: Client) -> None:
    with ExitStack() as busy:
        _saturate(busy)
        assert agent_client.get("/desk/").status_code == 200
        assert Client().get("/register/").status_code == 200
        assert Client().get("/livez").status_code == 200


def test_a_free_slot_lets_the_post_through_and_is_given_back() -> None:
    MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    with ExitStack() as busy:
        assert busy.enter_context(hash_slot()) is True  # one of two busy
        response = Client().post("/register/", registration_data())
    assert response.status_code == 302
    assert Ticket.objects.count() == 1
    with ExitStack() as again:
        _saturate(again)  # both slots free again after the request


def test_zero_turns_shedding_off() -> None:
    with override_settings(GUICHET_HASH_CONCURRENCY=0), ExitStack() as busy:
        assert busy.enter_context(hash_slot()) is True
        assert busy.enter_context(hash_slot()) is True
