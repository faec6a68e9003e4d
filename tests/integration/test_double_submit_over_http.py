"""docs/security.md §25 over real HTTP: the same registration page posted twice at the same instant
(a double click) and once more later (a reload) is one ticket and one acknowledgment e-mail."""

from __future__ import annotations

import threading
import urllib.parse

from tests.factories import MemberFactory
from tests.integration.harness import CeleryWorker, Response, SmtpSink, wait_outbox_idle
from tests.integration.steps import REFERENCE_IN_PATH, registration_data
from tickets.models import Ticket
from workflows.models import OutboxMessage, RequestAlias


def test_a_double_clicked_and_reloaded_registration_is_one_request(
    live_app, celery_worker: CeleryWorker, smtp_sink: SmtpSink
) -> None:
    member = MemberFactory(member_number="700300400", last_name="O'Brien", first_name="Łukasz")
    address = "lukasz@example.net"
    browser = live_app.client()
    page = browser.get("/register/")
    form = page.form()
    assert len(form.fields["form_token"][0]) == 43
    values = {**form.fields, **registration_data(member, email=address)}
    target = urllib.parse.urljoin(page.url, form.action or page.url)

    barrier = threading.Barrier(2)
    answers: list[Response] = []

    def click() -> None:
        barrier.wait()
        answers.append(browser.post(target, values, referer=page.url, follow=False))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=60)
    answers.append(browser.post(target, values, referer=page.url, follow=False))  # reload

    assert [a.status for a in answers] == [302, 302, 302], [a.status for a in answers]
    locations = {urllib.parse.urlsplit(a.location).path for a in answers}
    assert len(locations) == 1, locations
    assert REFERENCE_IN_PATH.match(locations.pop())
    assert Ticket.objects.count() == 1 and RequestAlias.objects.count() == 0
    assert OutboxMessage.objects.count() == 1
    wait_outbox_idle()
    assert len(smtp_sink.messages_to(address)) == 1
