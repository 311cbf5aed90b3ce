"""The wait for work in a pool thread (``worker/thread_watch.py``, ``wait_in_thread``): a task
handed to the waiting thread starts in that thread, within the worker's slots and under its
timeout; tasks of other lanes go to the loop; a stop interrupts the wait at once, and the stop
marker is never taken for a task."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import redis

from backends.support import enqueue, new_task, row
from conveyor import Conveyor, TaskState
from conveyor.backends.base import ClaimedTask, Waiter
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend
from conveyor.worker.executor import Executor
from helpers import wait_until
from integration.conftest import RunningWorker

WORKER = "waiter-1"
OPEN = Waiter(WORKER, 30.0, open=True)
CLOSED = Waiter(WORKER, 30.0, open=False)


def _offered(raw: redis.Redis, worker: str = WORKER, lease: float = 30.0) -> bool:
    return raw.zscore(keys.queue_keys("default").idle,
                      keys.offer("default", worker, lease)) is not None


def _blocked_pops(raw: redis.Redis) -> int:
    return sum(1 for c in raw.client_list() if c.get("cmd") == "blpop")


def _wait_in_thread(backend: RedisBackend, waiter: Waiter
                    ) -> tuple[threading.Thread, list[list[ClaimedTask]]]:
    got: list[list[ClaimedTask]] = []
    thread = threading.Thread(
        target=lambda: got.append(backend.wait_in_thread(["default"], 5.0, waiter)))
    thread.start()
    return thread, got


def test_a_blocking_wait_returns_the_task_handed_to_it(
    backend: RedisBackend, producer: RedisBackend, raw: redis.Redis
) -> None:
    thread, got = _wait_in_thread(backend, OPEN)
    wait_until(lambda: _offered(raw), message="the waiter offers")
    task_id = enqueue(producer, new_task())[0]
    thread.join(5)
    [[task]] = got
    leased = row(backend, task_id)
    assert task.id == task_id and task.queue == "default"
    assert (leased.state, leased.worker_id) == ("RUNNING", WORKER)


def test_an_interrupt_ends_the_wait_at_once_and_is_no_task(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    thread, got = _wait_in_thread(backend, OPEN)
    wait_until(lambda: _offered(raw) and _blocked_pops(raw) == 1, message="the waiter blocks")
    started = time.monotonic()
    asyncio.run(backend.interrupt_wait(["default"], OPEN))
    thread.join(5)
    assert got == [[]]
    assert time.monotonic() - started < 2.0, "the 5 s pop ended with the interrupt"
    # An interrupt that lands before the wait ends the next one; withdrawing then finds only
    # the marker, which is no task.
    asyncio.run(backend.interrupt_wait(["default"], OPEN))
    assert asyncio.run(backend.withdraw(["default"], CLOSED)) == []
    assert raw.llen(keys.inbox("default", WORKER)) == 0


def _worker_app(redis_url: str) -> Conveyor:
    return Conveyor(redis_url, lease=5.0, backend_options={"durability": "none"})


def _spy_on_waits(app: Conveyor) -> list[int]:
    """The thread of every wait that returned a task (calls through to the real backend)."""
    backend: Any = app.backend
    real = backend.wait_in_thread
    handed_in: list[int] = []

    def wait_in_thread(*args: Any) -> list[ClaimedTask]:
        tasks: list[ClaimedTask] = real(*args)
        if tasks:
            handed_in.append(threading.get_ident())
        return tasks

    backend.wait_in_thread = wait_in_thread
    return handed_in


def test_a_handed_task_runs_in_the_thread_that_waited_for_it(redis_url: str) -> None:
    app = _worker_app(redis_url)
    raw = redis.Redis.from_url(redis_url)
    ran_in: list[int] = []

    @app.task(queue="default")
    def where() -> None:
        ran_in.append(threading.get_ident())

    handed_in = _spy_on_waits(app)
    running = RunningWorker(app.worker(["default"], concurrency=4)).start()
    try:
        for _ in range(3):
            wait_until(lambda: _offered(raw, running.worker.id, 5.0), message="it offers")
            where.enqueue().result(timeout=5)
    finally:
        assert running.stop() == 0
    assert len(handed_in) == 3 and ran_in == handed_in
    raw.close()
    app.close()


def test_the_waiting_thread_keeps_to_the_slots(redis_url: str) -> None:
    """With one slot (and no prefetch), a task handed over takes it: no offer while it runs,
    so the next task waits in the queue, and it runs once the slot frees."""
    app = _worker_app(redis_url)
    raw = redis.Redis.from_url(redis_url)
    release = threading.Event()
    running_now: list[int] = []
    most = [0]

    @app.task(queue="default")
    def hold() -> None:
        running_now.append(1)
        most[0] = max(most[0], len(running_now))
        release.wait(10)
        running_now.pop()

    running = RunningWorker(app.worker(["default"], concurrency=1, prefetch=0)).start()
    try:
        worker_id = running.worker.id
        wait_until(lambda: _offered(raw, worker_id, 5.0), message="it offers")
        first = hold.enqueue()
        wait_until(lambda: running_now, message="the handed task runs")
        # The wait goes on in another thread, closed: it blocks without an offer.
        wait_until(lambda: _blocked_pops(raw) >= 1, message="the wait goes on")
        assert not _offered(raw, worker_id, 5.0)
        second = hold.enqueue()
        second_info = second.info()
        assert second_info is not None and second_info.state == TaskState.PENDING
        release.set()
        first.result(timeout=5)
        second.result(timeout=5)
    finally:
        release.set()
        assert running.stop() == 0
    assert most[0] == 1
    raw.close()
    app.close()


def test_a_task_started_by_the_waiting_thread_keeps_its_timeout(redis_url: str) -> None:
    app = _worker_app(redis_url)
    raw = redis.Redis.from_url(redis_url)
    release = threading.Event()

    @app.task(queue="default", timeout=0.2, max_retries=0)
    def stuck() -> None:
        release.wait(10)

    handed_in = _spy_on_waits(app)
    running = RunningWorker(app.worker(["default"], concurrency=2)).start()
    try:
        wait_until(lambda: _offered(raw, running.worker.id, 5.0), message="it offers")
        handle = stuck.enqueue()
        info = wait_until(lambda: (i := handle.info()) is not None
                          and i.state == TaskState.DEAD and i, message="timed out")
        assert "timeout" in (info.error or "")
        assert len(handed_in) == 1, "the waiting thread took it (not a claim by the loop)"
    finally:
        release.set()
        assert running.stop() == 0
    raw.close()
    app.close()


def test_an_async_task_handed_to_the_waiting_thread_runs_on_the_loop(redis_url: str) -> None:
    app = _worker_app(redis_url)
    raw = redis.Redis.from_url(redis_url)
    loop_threads: list[int] = []

    @app.task(queue="default")
    def plain() -> None:  # a thread-lane task: the worker waits in a pool thread
        return None

    @app.task(queue="default")
    async def on_loop() -> None:
        loop_threads.append(threading.get_ident())

    handed_in = _spy_on_waits(app)
    running = RunningWorker(app.worker(["default"], concurrency=2)).start()
    try:
        wait_until(lambda: _offered(raw, running.worker.id, 5.0), message="it offers")
        on_loop.enqueue().result(timeout=5)
    finally:
        assert running.stop() == 0
    assert len(handed_in) == 1 and loop_threads == [running.thread.ident]
    raw.close()
    app.close()


def _prestarted(app: Conveyor, concurrency: int) -> tuple[bool, int]:
    @app.task(queue="default")
    def plain() -> None:
        return None

    executor = Executor(app.tasks, "w", concurrency, "thread", 1 << 20, backend=app.backend)
    try:
        return executor.waits_in_thread, executor.threads.thread_count
    finally:
        executor.close()


def test_only_a_backend_that_waits_in_a_thread_gets_the_extra_thread(
    redis_url: str, tmp_path: Path
) -> None:
    """The thread beyond the slots is the waiting one: started where it is used (Redis on one
    server), not idle beside the slots of a SQLite (or PostgreSQL) worker."""
    on_redis, on_sqlite = _worker_app(redis_url), Conveyor(f"sqlite:///{tmp_path}/t.db")
    try:
        assert _prestarted(on_redis, 4) == (True, 5)
        assert _prestarted(on_sqlite, 4) == (False, 4)
    finally:
        on_redis.close()
        on_sqlite.close()
