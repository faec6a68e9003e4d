"""Only supervisors reach the supervisors' views; agents get 403, anonymous users the login."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

GET_PAGES = [
    "/desk/supervisor/",
    "/desk/supervisor/queue/",
    "/desk/supervisor/audit/",
    "/desk/supervisor/export/queue.csv",
    "/desk/supervisor/export/audit.csv",
]
POST_PAGES = ["/desk/supervisor/reassign/", "/desk/supervisor/release-stale/"]


@pytest.mark.parametrize("path", GET_PAGES + POST_PAGES)
def test_anonymous_users_are_sent_to_the_desk_login(client: Client, path: str) -> None:
    response = client.get(path) if path in GET_PAGES else client.post(path)
    assert response.status_code == 302
    # The path is URL-encoded, as on every desk page (a "&" cannot break the query string).
    assert response["Location"] == f"/desk/login/?{urlencode({'next': path})}"


@pytest.mark.parametrize("path", GET_PAGES + POST_PAGES)
def test_agents_get_403(agent_client: Client, path: str) -> None:
    response = agent_client.get(path) if path in GET_PAGES else agent_client.post(path)
    assert response.status_code == 403


@pytest.mark.parametrize("path", GET_PAGES + POST_PAGES)
def test_members_get_403(member_client: Client, path: str) -> None:
    response = member_client.get(path) if path in GET_PAGES else member_client.post(path)
    assert response.status_code == 403


@pytest.mark.parametrize("path", GET_PAGES)
def test_supervisors_see_every_page(supervisor_client: Client, path: str) -> None:
    assert supervisor_client.get(path).status_code == 200


@pytest.mark.parametrize("path", POST_PAGES)
def test_actions_refuse_get(supervisor_client: Client, path: str) -> None:
    assert supervisor_client.get(path).status_code == 405


@pytest.mark.parametrize(
    "query",
    ["state=nonsense", "kind=ZZZ&assignee=abc", "created_at_from=31/31/2026", "before=-1"],
)
def test_bad_filters_never_give_a_500(supervisor_client: Client, query: str) -> None:
    for path in GET_PAGES[1:]:
        assert supervisor_client.get(f"{path}?{query}").status_code == 200
