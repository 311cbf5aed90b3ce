"""Timeouts, bad messages and graceful shutdown: the worker survives all of them."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from conveyor import Conveyor, Retry, TaskState
from conveyor.backends.base import Enqueue, NewTask
from conveyor.ids import new_task_id
from conveyor.serialization import encode_payload
from helpers import wait_until


def test_async_task_over_its_timeout_is_cancelled_and_retried(
    app: Conveyor, start_worker
) -> None:
    cancelled: list[int] = []

    @app.task(timeout=0.2, max_retries=1, retry=Retry.fixed(0.01))
    async def too_slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    start_worker(app)
    handle = too_slow.enqueue()
    wait_until(lambda: handle.info().state == TaskState.DEAD, timeout=10)
    info = handle.info()
    assert info.attempts == 2, "a timeout is failed and retried"
    assert "TaskTimeout" in info.error and "cancelled" in info.error
    assert cancelled == [1, 1]


def test_sync_thread_task_over_its_timeout_is_failed_and_abandoned(
    app: Conveyor, start_worker
) -> None:
    release = threading.Event()

    @app.task(timeout=0.2, max_retries=0)
    def stuck() -> None:
        release.wait(30)

    @app.task
    def quick() -> str:
        return "still serving"

    running = start_worker(app, concurrency=1)
    handle = stuck.enqueue()
    wait_until(lambda: handle.info().state == TaskState.DEAD, timeout=10)
    assert "thread was abandoned" in handle.info().error
    # The abandoned thread still blocks, yet the single slot is free for the next task.
    assert quick.enqueue().result(timeout=10) == "still serving"
    assert running.worker._executor.threads.thread_count >= 2
    release.set()


def test_thread_tasks_done_in_time_leave_no_timeout_timer_behind(
    app: Conveyor, start_worker
) -> None:
    @app.task(timeout=600)
    def quick(i: int) -> int:
        return i

    running = start_worker(app, concurrency=4)
    handles = quick.enqueue_many([((i,), {}) for i in range(200)])
    assert [h.result(timeout=20) for h in handles] == list(range(200))
    worker = running.worker
    wait_until(lambda: not worker._running, timeout=10)
    live = [h for h in worker._loop._scheduled
            if not h.cancelled() and "_thread_overran" in repr(h._callback)]
    assert live == [] and worker._overrun_timers == {}


def test_process_task_over_its_timeout_is_killed_and_replaced(db_url: str, start_worker) -> None:
    from apps import basic

    basic.app.use(db_url)
    try:
        running = start_worker(basic.app, concurrency=1)
        slow = basic.sleep_in_process.enqueue(30)
        wait_until(lambda: slow.info().state == TaskState.DEAD, timeout=30)
        assert "killed and replaced" in slow.info().error
        assert running.worker._executor.processes_replaced == 1
        quick = basic.sleep_in_process.enqueue(0)
        assert isinstance(quick.result(timeout=30), int)
    finally:
        basic.app.close()


def test_process_pool_runs_sync_tasks_with_task_context(db_url: str, start_worker) -> None:
    from apps import basic

    basic.app.use(db_url)
    try:
        start_worker(basic.app, concurrency=2, pool="process")
        result = basic.whoami.enqueue().result(timeout=30)
        assert result["attempt"] == 1 and result["pid"] != __import__("os").getpid()
        assert basic.add.enqueue(2, 2).result(timeout=30) == 4
    finally:
        basic.app.close()


def test_malformed_and_unknown_messages_go_to_the_dlq_and_the_worker_carries_on(
    app: Conveyor, start_worker
) -> None:
    @app.task
    def good(n: int) -> int:
        return n

    def raw(name: str, payload: bytes) -> NewTask:
        return NewTask(id=new_task_id(), name=name, queue="default", payload=payload,
                       priority=5, max_retries=3)

    bad = [
        raw(good.name, b"\xc1\xff\x00garbage"),
        raw(good.name, encode_payload("x", ("only args",), {})[:-1]),
        raw(good.name, b"\x93\x01\x02\x03"),
        raw("no.such.task", encode_payload("x", (), {})),
    ]
    app.backend.execute(Enqueue(bad))
    goods = good.enqueue_many([((i,), {}) for i in range(20)])
    start_worker(app)
    assert [h.result(timeout=10) for h in goods] == list(range(20))
    wait_until(lambda: len(app.dead()) == 4, timeout=10)
    reasons = {t.id: t.dead_reason for t in app.dead()}
    assert [reasons[t.id] for t in bad] == ["decode_error"] * 3 + ["unknown_task"]
    assert all(t.attempts == 1 for t in app.dead()), "rejected at once, not retried"


def test_graceful_stop_finishes_running_and_releases_prefetched(
    app: Conveyor, start_worker
) -> None:
    started = threading.Event()

    @app.task
    def work(seconds: float) -> str:
        started.set()
        time.sleep(seconds)
        return "done"

    running_task = work.enqueue(0.5)  # claimed first (FIFO), still running at the stop
    queued = work.enqueue_many([((0.0,), {}) for _ in range(5)])
    worker = start_worker(app, concurrency=1, prefetch=5, grace=10)
    assert started.wait(10)
    wait_until(lambda: app.stats().total("RUNNING") == 6, timeout=10)
    assert worker.stop() == 0
    assert running_task.info().state == TaskState.DONE
    for handle in queued:
        info = handle.info()
        assert info.state == TaskState.PENDING
        assert info.attempts == 0, "a released task does not count an attempt"


def test_stop_after_grace_fails_the_stragglers_for_a_retry(app: Conveyor, start_worker) -> None:
    began = threading.Event()

    @app.task(max_retries=2)
    async def hangs() -> None:
        began.set()
        await asyncio.sleep(30)

    handle = hangs.enqueue()
    worker = start_worker(app, grace=0.2)
    # Started, not just claimed: a claimed task still in the prefetch buffer at the stop is
    # handed back unstarted, and the stop is then a clean one.
    assert began.wait(10)
    assert worker.stop() == 1, "a forced stop exits non-zero"
    info = handle.info()
    assert info.state == TaskState.FAILED
    assert "WorkerShutdown" in info.error


def test_a_task_that_keeps_killing_its_process_ends_dead_as_worker_lost(
    db_url: str, start_worker
) -> None:
    from apps import basic

    basic.app.use(db_url)
    try:
        running = start_worker(basic.app, concurrency=2)
        crasher = basic.kill_own_process.enqueue()
        healthy = basic.add.enqueue(1, 2)
        wait_until(lambda: crasher.info().state == TaskState.DEAD, timeout=60)
        info = crasher.info()
        assert info.dead_reason == "worker_lost"
        assert info.worker_lost == basic.app.max_worker_lost == info.attempts == 3
        assert "exit code 13" in info.error
        assert healthy.result(timeout=10) == 3
        assert running.worker._executor.processes_replaced == 3
    finally:
        basic.app.close()


def test_a_process_tasks_timeout_does_not_count_its_pool_process_start(
    db_url: str, start_worker
) -> None:
    """A task with a 1 s timeout on a pool process that takes 1.5 s to import its module (or
    that starts slowly on a busy host): the timeout is the task's own run, not the start-up's
    (seen in CI: a replacement process started late and its first task was killed)."""
    from apps import slow_import

    slow_import.app.use(db_url)
    try:
        start_worker(slow_import.app, concurrency=1)
        handle = slow_import.quick.enqueue()
        assert handle.result(timeout=60) != os.getpid()
        assert handle.info().attempts == 1
    finally:
        slow_import.app.close()
