"""Fixtures of the dashboard tests: the test app on a fresh SQLite file, and a client of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from apps import dashboard_app
from conveyor import Conveyor
from conveyor.dashboard import create_app
from integration.conftest import start_worker  # noqa: F401  (a fixture, shared)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Conveyor]:
    """``apps.dashboard_app.app`` pointed at a fresh store for this test."""
    application = dashboard_app.app
    application.use(f"sqlite:///{tmp_path / 'dashboard.db'}")
    yield application
    application.close()


@pytest.fixture
def client(app: Conveyor) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as test_client:
        yield test_client


def csrf_token(client: TestClient) -> str:
    """What a browser page holds: the token, with its cookie now in the client's jar."""
    response = client.get("/api/csrf")
    assert response.status_code == 200
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


def post_json(client: TestClient, path: str, body: object | None = None) -> dict[str, object]:
    response = client.post(path, json=body, headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 200, response.text
    result = response.json()
    assert isinstance(result, dict)
    return result


def make_dead(app: Conveyor, count: int = 1) -> list[str]:
    """Tasks that fail once and land in the DLQ, run by a real (burst) worker."""
    ids = [dashboard_app.bounce.enqueue(f"user{n}@example.com").id for n in range(count)]
    app.run_until_idle(["email"], timeout=20)
    return ids
