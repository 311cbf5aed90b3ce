"""The worker end to end on a real SQLite file: priorities, delays, retries, DLQ, results."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    ConfigurationError,
    Conveyor,
    ResultTimeout,
    Retry,
    TaskFailed,
    TaskState,
    current_task,
)
from helpers import record_claims, wait_until


def test_tasks_run_and_results_are_stored(app: Conveyor, start_worker) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task
    async def shout(word: str) -> str:
        await asyncio.sleep(0)
        return word.upper()

    start_worker(app, concurrency=4)
    assert add.enqueue(2, 3).result(timeout=10) == 5
    assert shout.enqueue("hi").result(timeout=10) == "HI"
    handles = add.enqueue_many([((i, i), {}) for i in range(50)])
    assert [h.result(timeout=10) for h in handles] == [2 * i for i in range(50)]
    info = handles[0].info()
    assert info.state == TaskState.DONE == "DONE"
    assert info.attempts == 1
    assert info.created_at <= info.started_at <= info.completed_at
    assert info.worker_id is not None


def test_a_prefetched_task_records_when_it_really_started(app: Conveyor, start_worker) -> None:
    """Leased with the others but run one after another: each stored start is its own, not
    the lease's (the worker reports it with the outcome)."""
    ran: dict[int, float] = {}

    @app.task
    def slow(n: int) -> None:
        ran[n] = time.time()
        time.sleep(0.2)

    handles = slow.enqueue_many([((n,), {}) for n in range(3)])
    start_worker(app, concurrency=1, prefetch=2)
    for handle in handles:
        handle.result(timeout=10)
    infos = [h.info() for h in handles]
    starts = sorted(i.started_at.timestamp() for i in infos)
    assert starts[2] - starts[0] >= 0.35, "not all at the lease's start"
    for n, info in enumerate(infos):
        assert abs(info.started_at.timestamp() - ran[n]) < 0.1
        assert info.started_at <= info.completed_at


def test_priority_nine_overtakes_a_backlog_of_a_thousand(app: Conveyor, start_worker) -> None:
    order: list[int] = []

    @app.task
    def job(priority: int) -> None:
        order.append(priority)

    job.options(priority=1).enqueue_many([((1,), {}) for _ in range(1000)])
    job.options(priority=9).enqueue(9)
    app.starvation_share = 0.0
    start_worker(app, concurrency=1, prefetch=0)
    wait_until(lambda: len(order) == 1001, timeout=60)
    assert order[0] == 9


def test_an_urgent_task_overtakes_a_full_prefetch_buffer(app: Conveyor, start_worker) -> None:
    """Slots and prefetch full of low-priority work: the urgent task is claimed anyway (above
    everything held) and starts at the next free slot, before the prefetched low ones."""
    started: list[str] = []
    release = threading.Event()

    @app.task
    def job(label: str) -> None:
        started.append(label)
        if label.startswith("low"):
            release.wait(10)

    app.starvation_share = 0.0
    job.options(priority=1).enqueue_many([((f"low{i}",), {}) for i in range(12)])
    running = start_worker(app, concurrency=2, prefetch=4)
    wait_until(lambda: len(started) == 2 and len(running.worker._buffer) == 4, timeout=10)
    job.options(priority=9).enqueue("urgent")
    wait_until(lambda: running.worker._buffer.top_priority() == 9, timeout=10)
    release.set()
    wait_until(lambda: len(started) == 13, timeout=30)
    assert started.index("urgent") == 2  # right after the two that held the slots


def test_low_priority_still_progresses_at_the_configured_share(
    db_url: str, start_worker
) -> None:
    app = Conveyor(db_url, starvation_share=0.2)
    seen: list[int] = []
    stop_producing = threading.Event()

    @app.task
    def job(priority: int) -> None:
        seen.append(priority)

    job.options(priority=1).enqueue_many([((1,), {}) for _ in range(300)])

    def produce_urgent_work() -> None:
        while not stop_producing.is_set():
            job.options(priority=9).enqueue_many([((9,), {}) for _ in range(20)])
            stop_producing.wait(0.005)

    producer = threading.Thread(target=produce_urgent_work)
    producer.start()
    try:
        wait_until(lambda: app.stats().total("PENDING") > 50, timeout=10)
        start_worker(app, concurrency=1, prefetch=0)
        wait_until(lambda: len(seen) >= 400, timeout=60)
    finally:
        stop_producing.set()
        producer.join()
    share = seen[:400].count(1) / 400
    assert 0.15 <= share <= 0.25, f"priority-1 share was {share:.2f}, configured 0.2"


def test_delayed_task_is_scheduled_and_never_starts_early(app: Conveyor, start_worker) -> None:
    started: list[float] = []

    @app.task
    def later() -> None:
        started.append(time.time())

    start_worker(app)
    handle = later.options(delay=0.5).enqueue()
    info = handle.info()
    assert info.state == TaskState.SCHEDULED
    due = info.scheduled_at.timestamp()
    handle.result(timeout=10)
    assert started[0] >= due
    assert started[0] - due < 0.5, "the worker sleeps until due, not on a coarse poll"

    eta = datetime.now(UTC) + timedelta(seconds=0.3)
    handle = later.options(eta=eta).enqueue()
    handle.result(timeout=10)
    assert started[1] >= eta.timestamp()


def test_flaky_task_retries_with_backoff_then_succeeds(app: Conveyor, start_worker) -> None:
    attempts: list[int] = []

    @app.task(max_retries=3, retry=Retry.exponential(base=0.3, factor=2, jitter=False))
    def flaky() -> str:
        attempts.append(current_task().attempt)
        if len(attempts) < 3:
            raise ConnectionError("transient")
        return "ok"

    start_worker(app)
    handle = flaky.enqueue()
    wait_until(lambda: handle.info().state == TaskState.FAILED, timeout=10)
    failed = handle.info()
    assert "ConnectionError: transient" in failed.error
    assert failed.scheduled_at > failed.started_at
    assert handle.result(timeout=10) == "ok"
    info = handle.info()
    assert info.attempts == 3
    assert attempts == [1, 2, 3]
    assert info.completed_at - info.created_at >= timedelta(seconds=0.3 + 0.6)


def test_exhausted_retries_go_to_the_dlq_with_the_traceback(app: Conveyor, start_worker) -> None:
    @app.task(max_retries=2, retry=Retry.fixed(0.01))
    def broken() -> None:
        raise RuntimeError("boom")

    start_worker(app)
    handle = broken.enqueue()
    with pytest.raises(TaskFailed) as raised:
        handle.result(timeout=10)
    assert "RuntimeError: boom" in str(raised.value)
    info = handle.info()
    assert info.state == TaskState.DEAD
    assert info.attempts == 3
    assert info.dead_reason == "max_retries"
    assert "Traceback" in info.error and 'raise RuntimeError("boom")' in info.error
    assert [t.id for t in app.dead()] == [handle.id]


def test_only_listed_exceptions_are_retried(app: Conveyor, start_worker) -> None:
    @app.task(max_retries=5, retry=Retry.fixed(0.01, on=(ConnectionError,)))
    def picky(kind: str) -> None:
        raise ConnectionError() if kind == "conn" else KeyError(kind)

    start_worker(app)
    not_retried = picky.enqueue("key")
    retried = picky.enqueue("conn")
    wait_until(lambda: not_retried.info().state == TaskState.DEAD, timeout=10)
    assert not_retried.info().attempts == 1
    assert not_retried.info().dead_reason == "not_retryable"
    wait_until(lambda: retried.info().state == TaskState.DEAD, timeout=10)
    assert retried.info().attempts == 6


def test_dlq_requeue_resets_attempts_and_purge_empties_it(app: Conveyor, start_worker) -> None:
    should_fail = {"yes": True}

    @app.task(max_retries=0)
    def sometimes() -> str:
        if should_fail["yes"]:
            raise ValueError("not yet")
        return "fine"

    start_worker(app)
    handles = [sometimes.enqueue() for _ in range(3)]
    wait_until(lambda: len(app.dead()) == 3, timeout=10)
    should_fail["yes"] = False
    assert sorted(app.requeue([handles[0].id])) == [handles[0].id]
    assert handles[0].result(timeout=10) == "fine"
    assert handles[0].info().attempts == 1
    assert app.purge(None, "DEAD") == 2
    assert app.dead() == []


def test_idempotency_key_runs_the_task_once(app: Conveyor, start_worker) -> None:
    runs: list[str] = []

    @app.task
    def charge(order: str) -> str:
        runs.append(order)
        return f"charged {order}"

    first = charge.options(idempotency_key="order-42").enqueue("42")
    second = charge.options(idempotency_key="order-42").enqueue("42")
    assert first.id == second.id and first.created and not second.created
    start_worker(app)
    assert first.result(timeout=10) == "charged 42"
    third = charge.options(idempotency_key="order-42").enqueue("42")
    assert third.id == first.id and not third.created
    assert third.result(timeout=1) == "charged 42"
    assert runs == ["42"]


def test_cancelled_task_never_runs(app: Conveyor, start_worker) -> None:
    runs: list[int] = []

    @app.task
    def job(n: int) -> None:
        runs.append(n)

    handle = job.options(delay=60).enqueue(1)
    assert app.cancel(handle.id) is True
    assert handle.info().state == TaskState.CANCELLED
    with pytest.raises(TaskFailed):
        handle.result(timeout=1)
    job.enqueue(2)
    start_worker(app)
    wait_until(lambda: runs == [2], timeout=10)
    assert app.cancel(handle.id) is False


def test_result_timeout_while_task_is_pending(app: Conveyor) -> None:
    @app.task
    def nothing() -> None:
        return None

    with pytest.raises(ResultTimeout):
        nothing.enqueue().result(timeout=0.1)


def test_heartbeats_keep_a_long_task_leased(db_url: str, start_worker) -> None:
    app = Conveyor(db_url, lease=0.6)

    @app.task
    def long_running() -> str:
        time.sleep(2.0)  # three leases long: only heartbeats keep it
        return "finished"

    start_worker(app)
    handle = long_running.enqueue()
    assert handle.result(timeout=10) == "finished"
    info = handle.info()
    assert info.attempts == 1 and info.worker_lost == 0


def test_unserializable_result_goes_to_the_dlq(app: Conveyor, start_worker) -> None:
    @app.task(max_retries=3)
    def returns_object() -> object:
        return object()

    start_worker(app)
    handle = returns_object.enqueue()
    wait_until(lambda: handle.info().state == TaskState.DEAD, timeout=10)
    info = handle.info()
    assert info.attempts == 1 and info.dead_reason == "not_retryable"
    assert "cannot be serialized" in info.error


def test_huge_and_unprintable_exceptions_are_stored_bounded(
    app: Conveyor, start_worker
) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    @app.task(max_retries=0)
    def huge() -> None:
        raise ValueError("x" * 1_000_000)

    @app.task(max_retries=0)
    def unprintable() -> None:
        raise Unprintable()

    start_worker(app)
    big, odd = huge.enqueue(), unprintable.enqueue()
    wait_until(lambda: big.info().state == odd.info().state == TaskState.DEAD, timeout=10)
    assert len(big.info().error) <= 70_000
    assert "Unprintable" in odd.info().error


def test_a_busy_worker_with_free_slots_picks_up_new_work_at_once(
    app: Conveyor, start_worker
) -> None:
    release = threading.Event()

    @app.task
    def long_running() -> None:
        release.wait(30)

    @app.task
    def quick() -> str:
        return "quick"

    start_worker(app, concurrency=4)
    blocker = long_running.enqueue()
    wait_until(lambda: blocker.info().state == TaskState.RUNNING, timeout=10)
    try:
        assert quick.enqueue().result(timeout=5) == "quick"
        assert blocker.info().state == TaskState.RUNNING, "it ran beside the long task"
    finally:
        release.set()


def test_claim_batch_bounds_each_claim(app: Conveyor, start_worker) -> None:
    @app.task
    def noop(i: int) -> int:
        return i

    limits = record_claims(app)
    handles = noop.enqueue_many([((i,), {}) for i in range(40)])
    start_worker(app, concurrency=4, prefetch=8, claim_batch=3)
    assert [h.result(timeout=20) for h in handles] == list(range(40))
    assert app.backend.claim_batch is None  # SQLite: no limit of its own
    assert limits and max(limits) == 3
    with pytest.raises(ConfigurationError):
        app.worker(claim_batch=0)
