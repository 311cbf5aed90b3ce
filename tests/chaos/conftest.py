"""Fixtures of the reliability suite: a fresh store per backend, the chaos app pointed at it,
and worker processes that never outlive their test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apps import chaos
from chaos.harness import SCALE, Workers
from conveyor import Conveyor
from postgres_server import fresh_url as fresh_postgres_url
from redis_server import fresh_url as fresh_redis_url

BACKENDS = ("sqlite", "redis", "postgres")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The full-size run (scale 1, a 10-minute soak) outlasts the suite's default timeout."""
    for item in items:
        if "tests/chaos/" in str(item.path) and item.get_closest_marker("timeout") is None:
            soak = float(os.environ.get("CONVEYOR_CHAOS_SOAK_SECONDS") or 0)
            item.add_marker(pytest.mark.timeout(max(300, 3000 * SCALE, soak + 300)))


def store_url(kind: str, directory: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{directory / 'chaos.db'}"
    if kind == "redis":
        return fresh_redis_url()
    return fresh_postgres_url()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path) -> str:
    return store_url(backend, tmp_path)


@pytest.fixture
def app(url: str) -> Iterator[Conveyor]:
    """The chaos app, as a producer and inspector on this test's store."""
    chaos.app.use(url)
    yield chaos.app
    chaos.app.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    """Make a ``Workers`` group; every process still alive at teardown is killed."""
    made: list[Workers] = []

    def make(url: str, **options: Any) -> Workers:
        group = Workers(url, tmp_path, **options)
        made.append(group)
        return group

    yield make
    for group in made:
        group.close()
