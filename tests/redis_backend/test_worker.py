"""A real worker on Redis: tasks run end to end, an idle worker picks work up at once, and a
Redis restart under a running worker (AOF, fsync always) loses nothing acknowledged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conveyor import Conveyor, TaskState
from conveyor.backends.base import QueueStatsRead
from conveyor.backends.redis import keys
from conveyor.worker.worker import WARM_CONNECTIONS
from helpers import record_claims, wait_until
from integration.conftest import RunningWorker
from redis_server import RedisServer


@pytest.fixture
def app(redis_url: str) -> Iterator[Conveyor]:
    application = Conveyor(redis_url, lease=5.0, backend_options={"durability": "none"})
    yield application
    application.close()


def _blocked_in_blpop(app: Conveyor) -> bool:
    with redis.Redis.from_url(app.url) as client:
        return any(c.get("cmd") == "blpop" for c in client.client_list())


def _start(app: Conveyor, **options: object) -> RunningWorker:
    return RunningWorker(app.worker(["default"], **options)).start()  # type: ignore[arg-type]


def test_tasks_run_end_to_end(app: Conveyor) -> None:
    @app.task(queue="default", max_retries=2)
    def add(a: int, b: int) -> int:
        return a + b

    attempts: list[int] = []

    @app.task(queue="default", max_retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return "ok"

    worker = _start(app, concurrency=4)
    try:
        handles = add.enqueue_many([((n, n), {}) for n in range(50)])
        retried = flaky.options().enqueue()
        assert [h.result(timeout=10) for h in handles] == [2 * n for n in range(50)]
        assert retried.result(timeout=15) == "ok"
        assert retried.info().attempts == 2
    finally:
        assert worker.stop() == 0
    [counts] = app.backend.execute(QueueStatsRead())
    assert counts.counts == {"DONE": 51}


def test_an_idle_worker_starts_a_task_within_milliseconds(app: Conveyor) -> None:
    started: list[float] = []
    ran = threading.Event()

    @app.task(queue="default")
    def mark() -> None:
        started.append(time.perf_counter())
        ran.set()

    worker = _start(app, concurrency=2)
    try:
        latencies = []
        for _ in range(5):
            ran.clear()
            wait_until(lambda: _blocked_in_blpop(app), message="the worker waits for work")
            enqueued = time.perf_counter()
            mark.enqueue()
            assert ran.wait(5)
            latencies.append(started[-1] - enqueued)
        assert sorted(latencies)[2] < 0.05, latencies
        print(f"idle pickup latencies (ms): {[round(x * 1000, 2) for x in latencies]}")
    finally:
        worker.stop()


@pytest.mark.slow
def test_a_restart_under_a_running_worker_loses_nothing(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always").start()
    app = Conveyor(server.url, lease=5.0, backend_options={"strict": True})
    done_before: list[str] = []

    @app.task(queue="default")
    def work(n: int) -> int:
        return n

    worker = _start(app, concurrency=8)
    acknowledged: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            try:
                acknowledged.append(work.enqueue(n).id)
            except Exception:  # the server is down: this enqueue was not acknowledged
                time.sleep(0.01)
            n += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_until(lambda: len(acknowledged) > 200, message="enqueues before the restart")
        done_before = [i for i in list(acknowledged)[:100]
                       if app.get(i) is not None and app.get(i).state == TaskState.DONE]  # type: ignore[union-attr]
        server.stop(kill=True)  # SIGKILL: only what was fsynced survives
        server.start()
        count = len(acknowledged)
        wait_until(lambda: len(acknowledged) > count + 200, timeout=30,
                   message="enqueues after the restart")
    finally:
        stop.set()
        producer.join(30)
    try:
        def all_done() -> bool:
            [counts] = app.backend.execute(QueueStatsRead())
            return counts.counts.get("DONE", 0) >= len(acknowledged)

        wait_until(all_done, timeout=60, message="every acknowledged task done")
        assert worker.thread.is_alive(), "the worker carried on"
        missing = [i for i in acknowledged if app.get(i) is None]
        assert missing == []
        assert done_before, "some tasks were done before the restart"
        assert all(app.get(i).state == TaskState.DONE for i in done_before)  # type: ignore[union-attr]
    finally:
        worker.stop()
        app.close()
        server.stop()


def test_claims_lease_at_most_the_backends_batch_and_follow_each_other(app: Conveyor) -> None:
    """A worker with room for 128 claims 32 at a time on Redis (each script holds the server
    while it runs), and the next claim follows a full one at once: with every task held, no
    slot frees, so only a full claim can have prompted the next."""
    release = threading.Event()

    @app.task(queue="default")
    def held(i: int) -> int:
        release.wait(30)
        return i

    handles = held.enqueue_many([((i,), {}) for i in range(300)])
    with redis.Redis.from_url(app.url) as client:  # no wake-up token may prompt a claim
        client.delete(keys.tag_keys("default").signal)
    limits = record_claims(app)
    worker = _start(app, concurrency=64, prefetch=64)
    try:
        wait_until(lambda: len(limits) >= 4, timeout=10,
                   message="four claims while every task is held")
        assert limits[:4] == [32, 32, 32, 32]
        release.set()
        assert [h.result(timeout=30) for h in handles] == list(range(300))
    finally:
        release.set()
        assert worker.stop() == 0
    assert app.backend.claim_batch == 32
    assert limits and max(limits) == 32
    assert len(limits) >= 300 // 32


def test_a_worker_opens_its_connections_before_its_first_claim(app: Conveyor) -> None:
    """Opened on demand, they came while the loop ran its first batch, each waiting on it for
    its handshake (18-35 ms each), and the urgent watcher with them."""
    with redis.Redis.from_url(app.url) as client:
        before = len(client.client_list())
        worker = _start(app, concurrency=4)  # returns once the worker has started
        try:
            opened = len(client.client_list()) - before
            assert opened >= WARM_CONNECTIONS, f"{opened} connections at the first claim"
        finally:
            assert worker.stop() == 0


def test_a_burst_worker_on_an_empty_queue_exits_at_once(app: Conveyor) -> None:
    """A burst run ends moments after its watcher starts, while the watcher sends its first
    commands, where Python 3.11's ``wait_for`` inside redis-py can swallow the cancellation:
    9 of 20 such runs then waited out the watcher's blocking pop (5.05 s each) before
    exiting. With the watcher cancelled again they took 0.04-0.12 s each."""
    for _ in range(10):
        fresh = Conveyor(app.url, backend_options={"durability": "none"})  # as a new process
        try:
            worker = fresh.worker(["default"], burst=True, idle_timeout=5.0)
            started = time.monotonic()
            assert worker.run() == 0
            assert time.monotonic() - started < 2.5
        finally:
            fresh.close()
