"""Fixtures for worker tests: a real SQLite file per test and workers running in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, Worker


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


@pytest.fixture
def app(db_url: str) -> Iterator[Conveyor]:
    application = Conveyor(db_url, lease=5.0)
    yield application
    application.close()


class RunningWorker:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def start(self) -> RunningWorker:
        self.thread.start()
        assert self.worker.started.wait(10), "worker did not start"
        return self

    def stop(self, cold: bool = False, timeout: float = 30.0) -> int | None:
        self.worker.stop(cold=cold)
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        return self.worker.exit_code


@pytest.fixture
def start_worker() -> Iterator[Callable[..., RunningWorker]]:
    """Start a worker in a thread; every worker still running at teardown is stopped."""
    running: list[RunningWorker] = []

    def start(app: Conveyor, queues: list[str] | None = None, **options: Any) -> RunningWorker:
        handle = RunningWorker(app.worker(queues, **options)).start()
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if handle.thread.is_alive():
            handle.stop(cold=True)
