"""LISTEN/NOTIFY: an idle waiter wakes within milliseconds of a commit elsewhere, by the
notification and not by polling; a wake-up between an empty claim and the wait is not lost."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import psycopg

from backends.support import enqueue, new_task
from conveyor.backends.base import Claim, Fail, Failure
from conveyor.backends.postgres.backend import PostgresBackend


def _latency(waiter: PostgresBackend, producer: PostgresBackend, queue: str) -> float:
    async def main() -> float:
        waiting = asyncio.create_task(waiter.wait_for_work([queue], 10.0))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        committed: list[float] = []

        def produce() -> None:
            enqueue(producer, new_task(queue))
            committed.append(time.monotonic())

        thread = threading.Thread(target=produce)
        thread.start()
        await waiting
        woke = time.monotonic()
        thread.join(10)
        return woke - committed[0]

    return asyncio.run(main())


def test_wake_up_latency_is_milliseconds_without_polling(pg_url: str) -> None:
    waiter, producer = PostgresBackend(pg_url), PostgresBackend(pg_url)
    try:
        enqueue(producer, new_task("warm-up"))
        latencies = [_latency(waiter, producer, "default") for _ in range(10)]
        listener = waiter._listener
        assert listener is not None and listener.notifications >= 10
    finally:
        waiter.close()
        producer.close()
    # Measured from the producer's return (after its commit) to the waiter's: the notification
    # may even arrive first, so this can be negative. The wait's timeout was 10 s: only the
    # notification can explain a return this fast.
    assert max(latencies) < 0.05, latencies
    print(f"wake-up latency: median {statistics.median(latencies) * 1000:.2f} ms, "
          f"max {max(latencies) * 1000:.2f} ms")


def test_other_queues_do_not_wake_the_waiter(pg_url: str) -> None:
    waiter, producer = PostgresBackend(pg_url), PostgresBackend(pg_url)
    try:
        async def main() -> float:
            started = time.monotonic()
            waiting = asyncio.create_task(waiter.wait_for_work(["mine"], 0.3))
            await asyncio.sleep(0.01)
            await asyncio.to_thread(enqueue, producer, new_task("theirs"))
            await waiting
            return time.monotonic() - started

        assert asyncio.run(main()) >= 0.29
    finally:
        waiter.close()
        producer.close()


def test_work_between_an_empty_claim_and_the_wait_is_not_lost(pg_url: str) -> None:
    worker, producer = PostgresBackend(pg_url), PostgresBackend(pg_url)
    try:
        async def main() -> float:
            assert await worker.aexecute(Claim("w", ["default"], 10, 30.0)) == []
            await asyncio.to_thread(enqueue, producer, new_task())  # before the wait starts
            started = time.monotonic()
            await worker.wait_for_work(["default"], 5.0)
            return time.monotonic() - started

        assert asyncio.run(main()) < 0.5
    finally:
        worker.close()
        producer.close()


def test_a_retry_wakes_the_waiter_to_recompute_its_sleep(pg_url: str) -> None:
    worker, other = PostgresBackend(pg_url), PostgresBackend(pg_url)
    try:
        enqueue(other, new_task())
        [claimed] = other.execute(Claim("w2", ["default"], 1, 30.0))

        async def main() -> float:
            assert await worker.aexecute(Claim("w", ["default"], 10, 30.0)) == []
            failure = Failure(claimed.id, claimed.lease_token, "boom", 60.0)
            await asyncio.to_thread(other.execute, Fail([failure]))
            started = time.monotonic()
            await worker.wait_for_work(["default"], 5.0)
            return time.monotonic() - started

        assert asyncio.run(main()) < 0.5
    finally:
        worker.close()
        other.close()


def test_a_dropped_listener_wakes_the_waiter_and_reconnects(pg_url: str) -> None:
    """The listener's session is killed while a coroutine waits (its loop watching the socket
    too): the waiter wakes (notifications may have been lost), and the next wait is woken by
    a notification again, over the new session."""
    waiter, producer = PostgresBackend(pg_url), PostgresBackend(pg_url)
    try:
        listener = waiter._ensure_listener()
        assert listener._connection is not None
        pid = listener._connection.info.backend_pid

        async def main() -> tuple[float, float]:
            started = time.monotonic()
            waiting = asyncio.create_task(waiter.wait_for_work(["q"], 10.0))
            await asyncio.sleep(0.05)
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await asyncio.wait_for(waiting, 5.0)
            dropped = time.monotonic() - started
            deadline = time.monotonic() + 5.0
            while listener._connection is None or listener._connection.info.backend_pid == pid:
                assert time.monotonic() < deadline, "the listener did not reconnect"
                await asyncio.sleep(0.01)
            waiter._seen_at_claim = (listener, listener.mark())
            started = time.monotonic()
            waiting = asyncio.create_task(waiter.wait_for_work(["q"], 10.0))
            await asyncio.sleep(0.05)
            await asyncio.to_thread(enqueue, producer, new_task("q"))
            await asyncio.wait_for(waiting, 5.0)
            return dropped, time.monotonic() - started

        dropped, woken = asyncio.run(main())
        assert dropped < 5.0 and woken < 5.0
    finally:
        waiter.close()
        producer.close()
