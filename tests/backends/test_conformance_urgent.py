"""Urgent arrivals: a busy worker whose prefetch buffer holds only lower priorities learns at
once that a more urgent task arrived, and claims it ahead of what it buffered.

Backends that announce such arrivals (``signals_priority``) are held to the announcement; the
others (SQLite, PostgreSQL) find urgent work with the worker's fallback claims, covered by the
worker tests, so the announcement tests skip on them.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from backends.support import enqueue, new_task
from conveyor import Conveyor
from conveyor.backends.base import Backend
from helpers import wait_until
from integration.conftest import RunningWorker


def _needs_announcements(backend: Backend) -> None:
    if not backend.signals_priority:
        pytest.skip(f"{type(backend).__name__} announces no urgent arrivals")


def test_a_task_ahead_of_all_waiting_work_is_announced(
    backend: Backend, other_backend: Backend
) -> None:
    _needs_announcements(backend)
    enqueue(other_backend, *[new_task(priority=1) for _ in range(3)])

    async def main() -> int | None:
        waiting = asyncio.create_task(backend.wait_for_urgent(["default"], 10.0))
        await asyncio.sleep(0)
        await asyncio.to_thread(enqueue, other_backend, new_task(priority=7),
                                new_task(priority=9), new_task(priority=1))
        return await waiting

    assert asyncio.run(main()) == 9  # the batch's highest, at once (not after the 10 s)


def test_work_that_overtakes_nothing_is_not_announced(backend: Backend) -> None:
    """Into an empty queue (the signal list wakes a worker for that), at a priority already
    waiting, or below it: nothing to announce."""
    _needs_announcements(backend)
    enqueue(backend, new_task(priority=5))
    enqueue(backend, new_task(priority=5), new_task(priority=3))
    enqueue(backend, new_task("other", priority=9))
    assert asyncio.run(backend.wait_for_urgent(["default"], 0.2)) is None


def test_a_busy_worker_starts_an_announced_urgent_task_before_its_buffer(app: Conveyor) -> None:
    """Slots and prefetch buffer full of low-priority work, more of it waiting: a priority-9
    task is claimed into the buffer on the announcement alone (the worker's fallback claims
    are off, so nothing else could find it while every slot is held) and starts at the next
    free slot, before the buffered low ones."""
    _needs_announcements(app.backend)
    started: list[str] = []
    release = threading.Event()

    @app.task(queue="default")
    def job(label: str) -> None:
        started.append(label)
        if label.startswith("low"):
            release.wait(30)

    app.starvation_share = 0.0
    job.options(priority=1).enqueue_many([((f"low{i}",), {}) for i in range(12)])
    worker = app.worker(["default"], concurrency=2, prefetch=4)
    worker.urgent_fallback = False
    running = RunningWorker(worker).start()
    try:
        wait_until(lambda: len(started) == 2 and len(worker._buffer) == 4,
                   message="two lows running, four buffered")
        job.options(priority=9).enqueue("urgent")
        wait_until(lambda: worker._buffer.top_priority() == 9,
                   message="the urgent task claimed into the full buffer")
        assert len(started) == 2, "no slot freed meanwhile"
    finally:
        release.set()
    wait_until(lambda: len(started) == 13, timeout=30)
    running.stop()
    assert started.index("urgent") == 2, started  # right after the two that held the slots
