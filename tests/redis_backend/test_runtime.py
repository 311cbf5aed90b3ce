"""Wake-ups within milliseconds of an enqueue, the async client per event loop, fork safety."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import threading
import time

import redis

from backends.support import claim, enqueue, new_task
from conveyor.backends.base import Claim, Enqueue, GetTasks, ListTasks
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend


def _wake_latency(
    waiter: RedisBackend, producer: RedisBackend, producer_raw: redis.Redis
) -> float:
    async def main() -> float:
        await waiter.aexecute(Claim("w", ["default"], 1, 30.0))  # the claim the wait counts from
        wake = asyncio.create_task(waiter.wait_for_work(["default"], 5.0))
        while not any(c.get("cmd") == "blpop" for c in producer_raw.client_list()):  # noqa: ASYNC110
            await asyncio.sleep(0.001)  # polls the server until the BLPOP is there
        assert not wake.done()
        enqueued_at: list[float] = []

        def produce() -> None:
            enqueued_at.append(time.perf_counter())  # before: the latency includes the enqueue
            enqueue(producer, new_task())

        thread = threading.Thread(target=produce)
        thread.start()
        await wake
        woke = time.perf_counter()
        thread.join()
        return woke - enqueued_at[0]

    return asyncio.run(main())


def test_an_idle_waiter_wakes_within_milliseconds(redis_url: str, raw: redis.Redis) -> None:
    waiter = RedisBackend(redis_url, durability="none")
    producer = RedisBackend(redis_url, durability="none")
    try:
        latencies = []
        for _ in range(10):
            latencies.append(_wake_latency(waiter, producer, raw))
            claim(producer, limit=10)
        assert statistics.median(latencies) < 0.05, latencies
        print(f"wake-up latencies (ms): {[round(x * 1000, 2) for x in latencies]}")
    finally:
        waiter.close()
        producer.close()


def test_an_enqueue_before_the_wait_is_not_lost(backend: RedisBackend) -> None:
    """Between a claim that found nothing and the wait, an enqueue lands: the wait returns."""
    async def main() -> float:
        await backend.aexecute(Claim("w", ["default"], 1, 30.0))
        enqueue(backend, new_task())
        started = time.monotonic()
        await backend.wait_for_work(["default"], 5.0)
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5


def test_a_claim_that_empties_the_queue_drops_its_tokens(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    enqueue(backend, *[new_task() for _ in range(100)])
    signal = keys.queue_keys("default").signal
    assert raw.llen(signal) == 64, "capped"
    claim(backend, limit=60)
    assert raw.llen(signal) == 64, "work is left: the tokens stay"
    claim(backend, limit=60)
    assert raw.llen(signal) == 0


def test_the_async_runner_survives_many_event_loops(backend: RedisBackend) -> None:
    for n in range(5):
        [outcome] = asyncio.run(backend.aexecute(Enqueue([new_task()])))
        assert outcome.created, n
    assert len(backend.execute(ListTasks())) == 5


def _enqueue_in_child(backend: RedisBackend, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    results.put(enqueue(backend, new_task())[0])


def test_a_forked_child_opens_its_own_connections(backend: RedisBackend) -> None:
    [before] = enqueue(backend, new_task())  # the parent's pool holds a connection now
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    children = [ctx.Process(target=_enqueue_in_child, args=(backend, results)) for _ in range(3)]
    for child in children:
        child.start()
    ids = [results.get(timeout=30) for _ in children]
    for child in children:
        child.join(30)
    assert [child.exitcode for child in children] == [0, 0, 0]
    [after] = enqueue(backend, new_task())
    found = {r.id for r in backend.execute(GetTasks([before, after, *ids]))}
    assert found == {before, after, *ids}
