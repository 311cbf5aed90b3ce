"""Fixtures of the backend conformance suite.

Every test here runs once per backend kind in ``KINDS``. A new backend joins the suite by adding
one entry to ``KINDS`` and nothing else, so tests use only the ``Backend`` protocol and the
transition values of :mod:`conveyor.backends.base`, never a backend's internals.

Time: tests of delays, leases and expiry ask for the ``clock`` fixture and move it with
``clock.advance(seconds)`` instead of sleeping. A kind whose clock cannot be injected (a server's
own clock) sets ``injectable_clock=False``; the tests that need the clock then skip on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.backends.base import Backend
from conveyor.backends.postgres.backend import PostgresBackend
from conveyor.backends.redis.backend import RedisBackend
from conveyor.backends.sqlite.backend import SQLiteBackend
from postgres_server import fresh_url as fresh_postgres_url
from redis_cluster import fresh_url as fresh_cluster_url
from redis_server import fresh_url

START = 1_700_000_000.0
"""Where the test clock starts, epoch seconds (2023-11-14): a realistic, fixed instant."""


class Clock:
    """A clock a backend reads through ``clock=``; it only moves when a test moves it."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class BackendKind:
    name: str
    url: Callable[[Path], str]
    """The URL of a fresh store for one test, given that test's tmp_path."""
    open: Callable[[str, Clock | None], Backend]
    injectable_clock: bool
    shared_store: bool
    """Two backends opened on the same URL see the same tasks (several processes can share it)."""
    slow: bool = False
    """Its tests are marked slow (a store that takes seconds to start)."""
    global_idempotency: bool = True
    """One idempotency key space for all queues (Redis Cluster: one per queue)."""
    global_order: bool = True
    """Enqueue order holds across queues (Redis Cluster: within a queue's partition; across
    tags, creation time orders)."""


def _open_sqlite(url: str, clock: Clock | None) -> Backend:
    return SQLiteBackend(url, clock=clock) if clock is not None else SQLiteBackend(url)


def _open_redis(url: str, clock: Clock | None) -> Backend:
    return RedisBackend(url, clock=clock)


def _open_postgres(url: str, clock: Clock | None) -> Backend:
    return PostgresBackend(url, clock=clock)


KINDS = {
    "sqlite-file": BackendKind(
        "sqlite-file", lambda tmp: f"sqlite:///{tmp / 'conveyor.db'}", _open_sqlite,
        injectable_clock=True, shared_store=True,
    ),
    "sqlite-memory": BackendKind(
        "sqlite-memory", lambda tmp: "sqlite://:memory:", _open_sqlite,
        injectable_clock=True, shared_store=False,
    ),
    "postgres": BackendKind(
        "postgres", lambda tmp: fresh_postgres_url(), _open_postgres,
        injectable_clock=True, shared_store=True,
    ),
    "redis": BackendKind(
        "redis", lambda tmp: fresh_url(), _open_redis, injectable_clock=True, shared_store=True,
    ),
    "redis-cluster": BackendKind(
        "redis-cluster", lambda tmp: fresh_cluster_url(), _open_redis, injectable_clock=True,
        shared_store=True, slow=True, global_idempotency=False, global_order=False,
    ),
}


@pytest.fixture(params=[
    pytest.param(name, marks=[pytest.mark.slow] if KINDS[name].slow else [])
    for name in sorted(KINDS)
])
def backend_kind(request: pytest.FixtureRequest) -> BackendKind:
    return KINDS[request.param]


@pytest.fixture
def backend_url(backend_kind: BackendKind, tmp_path: Path) -> str:
    return backend_kind.url(tmp_path)


@pytest.fixture
def _test_clock(backend_kind: BackendKind) -> Clock | None:
    return Clock() if backend_kind.injectable_clock else None


@pytest.fixture
def clock(backend_kind: BackendKind, _test_clock: Clock | None) -> Clock:
    """The clock of ``backend`` (and ``app``): frozen at ``START`` until ``advance``."""
    if _test_clock is None:
        pytest.skip(f"{backend_kind.name}: the backend's clock cannot be injected")
    return _test_clock


@pytest.fixture
def open_backend(
    backend_kind: BackendKind, backend_url: str, _test_clock: Clock | None
) -> Iterator[Callable[[], Backend]]:
    """Opens more backends on the store of ``backend`` (closed after the test)."""
    opened: list[Backend] = []

    def open_one() -> Backend:
        backend = backend_kind.open(backend_url, _test_clock)
        opened.append(backend)
        return backend

    yield open_one
    for backend in reversed(opened):
        backend.close()


@pytest.fixture
def backend(open_backend: Callable[[], Backend]) -> Backend:
    return open_backend()


@pytest.fixture
def other_backend(backend_kind: BackendKind, open_backend: Callable[[], Backend]) -> Backend:
    """A second client of the same store: another connection, as another process would have."""
    if not backend_kind.shared_store:
        pytest.skip(f"{backend_kind.name}: a second client cannot reach the same store")
    return open_backend()


@pytest.fixture
def app(backend_url: str, _test_clock: Clock | None) -> Iterator[Conveyor]:
    """A ``Conveyor`` on this backend kind, reading the test clock.

    Whether it shares tasks with ``backend`` depends on the kind (not for ``:memory:``): a test
    goes through one or the other, never both.
    """
    options = {"clock": _test_clock} if _test_clock is not None else {}
    application = Conveyor(backend_url, backend_options=options)
    yield application
    application.close()
