"""docs/security.md §9-11: after issuance, neither the temporary password nor the secret answer
(nor the member's new password) is in any database row, Redis key or log line."""

from __future__ import annotations

import datetime
import json
import re

from members.secret_answers import normalise_secret_answer
from tests.factories import MemberFactory, StaffFactory
from tests.integration.harness import (
    CeleryWorker,
    SmtpSink,
    outbox_template_of,
    temporary_password_in,
    wait_outbox_idle,
)
from tests.integration.steps import (
    desk_action,
    desk_login,
    member_login,
    register,
    registration_data,
)

SECRET_ANSWER = "Ébène-Mistral Quatorze"
NEW_PASSWORD = "Orchard sparrow violin 83"


def test_no_secret_is_at_rest_in_the_database_the_broker_or_the_logs(
    live_app, celery_worker: CeleryWorker, smtp_sink: SmtpSink, secrets_scan
) -> None:
    member = MemberFactory(
        member_number="700500600",
        last_name="Girard",
        first_name="Noël",
        birth_date=datetime.date(1958, 6, 21),
    )
    StaffFactory(username="agent-sec")
    address = "noel.girard@example.net"
    answers = [SECRET_ANSWER, normalise_secret_answer(SECRET_ANSWER)]
    assert answers[1] == "ebene mistral quatorze"

    browser = live_app.client()
    reference = register(
        browser, registration_data(member, email=address, secret_answer=SECRET_ANSWER)
    )
    smtp_sink.wait_for(lambda m: address in m["To"] and outbox_template_of(m) == "acknowledgment")

    # While the worker is paused, the credentials task waits in Redis: ids only, no answer.
    celery_worker.pause()
    try:
        desk = live_app.client()
        desk_login(desk, "agent-sec", "staff password 123")
        desk_action(desk, reference, "confirm")
        waiting = secrets_scan([*answers, "errbacks"])
    finally:
        celery_worker.resume()
    # "errbacks" only exists inside the base64 body of a queued task: the scan read the queue.
    assert any("(message body)" in where for where in waiting.where("errbacks")), waiting.found
    assert all(not waiting.where(answer) for answer in answers), waiting.found

    codes = smtp_sink.wait_for(
        lambda m: address in m["To"] and outbox_template_of(m) == "credentials", timeout=90
    )
    temporary = temporary_password_in(codes)

    # The member uses the codes, so the login and password-change paths are logged too.
    member_browser = live_app.client()
    assert (
        member_login(member_browser, member.member_number, temporary).path == "/account/password/"
    )
    changed = member_browser.submit(
        "/account/password/",
        {"old_password": temporary, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.path == "/account/"
    wait_outbox_idle()
    worker_text = celery_worker.log_text()
    assert '"level": "DEBUG"' in worker_text, "the worker must log at DEBUG (JSON) for this test"

    report = secrets_scan(
        [
            temporary,
            NEW_PASSWORD,
            *answers,
            # Controls, each known to be in one place: they prove every source was read.
            reference,
            "_kombu.binding.celery",
            "(credentials) sent",
            "member login ok",
        ]
    )
    assert report.where(temporary) == []
    assert report.where(NEW_PASSWORD) == []
    for answer in answers:
        assert report.where(answer) == []
    assert any(w.startswith("db:tickets_ticket:") for w in report.where(reference)), report.found
    assert any(w.startswith("redis:") for w in report.where("_kombu.binding.celery"))
    worker_log = f"log:{celery_worker.log_path.name}:"
    assert any(w.startswith(worker_log) for w in report.where("(credentials) sent"))
    assert any(w.startswith("log:test-process.log") for w in report.where("member login ok"))
    assert report.scanned["db_tables"] > 10 and report.scanned["db_rows"] > 0
    assert report.scanned["json_log_lines"] > 0  # the worker's JSON lines were read decoded
    # The worker's lines carry the request id of the web request that queued the task.
    sent = [
        json.loads(line)
        for line in worker_text.splitlines()
        if line.startswith("{") and "(credentials) sent" in line
    ]
    assert sent and re.fullmatch(r"[0-9a-f]{32}", sent[0]["request_id"]), sent
