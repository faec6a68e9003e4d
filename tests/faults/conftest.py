"""Fault tests reuse the integration harness (tests/integration/conftest.py) fixture by fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures re-exported for tests/faults)
    _fresh_cache,
    celery_worker_factory,
    integration_db,
    integration_services_gate,
    integration_tmp,
    live_app,
    process_log,
    real_password_hashers,
    smtp_server,
    smtp_sink,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/faults needs the real services."""
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def sole_consumer() -> Iterator[None]:
    """Other workers of this session stop consuming while a fault test runs its own worker."""
    from desk.celery import app

    app.control.broadcast("cancel_consumer", arguments={"queue": "celery"}, reply=True, timeout=1)
    yield
    app.control.broadcast("add_consumer", arguments={"queue": "celery"}, reply=True, timeout=1)
