"""Issue 14 on real services: a revoked API client is refused at once over HTTP — a new token and
the token it already holds — while another client goes on working."""

from __future__ import annotations

import io

from django.core.management import call_command

from tests.integration.steps import api_bearer, api_call, api_client_create, api_token_request


def test_a_revoked_client_gets_no_token_and_its_live_token_stops_at_once(live_app) -> None:
    crm = api_client_create("crm", "events:read,requests:read")
    portal = api_client_create("portal", "events:read")
    crm_bearer = api_bearer(live_app.url, crm["client_id"], crm["client_secret"])
    portal_bearer = api_bearer(live_app.url, portal["client_id"], portal["client_secret"])
    assert api_call(live_app.url, "/api/v1/events", headers=crm_bearer)[0] == 200

    out = io.StringIO()
    call_command("api_client", "revoke", crm["client_id"], stdout=out)
    assert crm["client_id"] in out.getvalue()

    # The very next call with the token issued before the revocation is refused...
    status, headers, problem = api_call(live_app.url, "/api/v1/events", headers=crm_bearer)
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["type"].endswith("/unauthenticated")
    # ...on every endpoint, not only the one that was called before...
    status, _, _ = api_call(live_app.url, "/api/v1/requests/REG-00000000", headers=crm_bearer)
    assert status == 401
    # ...and so is a new token, with the right secret, with the same problem as a wrong secret.
    status, refused = api_token_request(live_app.url, crm["client_id"], crm["client_secret"])
    _, wrong_secret = api_token_request(live_app.url, crm["client_id"], "not-the-secret")
    assert status == 401
    assert refused == wrong_secret
    assert refused["type"].endswith("/invalid-client")

    # The other client is untouched.
    assert api_call(live_app.url, "/api/v1/events", headers=portal_bearer)[0] == 200
