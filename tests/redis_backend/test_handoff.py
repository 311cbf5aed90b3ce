"""Hand-offs (handoff.py): an enqueue leases a task straight to a worker waiting with an open
offer, and only when nothing waits ahead of it; offers expire, pausing drops them, a claim that
takes work withdraws them, and a worker that stops gets back what it was handed."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis

from backends.support import claim, complete, enqueue, new_task, row
from conveyor import Conveyor
from conveyor.backends.base import ClaimedTask, PauseQueue, Release, Waiter
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend
from helpers import wait_until
from integration.conftest import RunningWorker

WORKER = "waiter-1"
OPEN = Waiter(WORKER, 30.0, open=True)
CLOSED = Waiter(WORKER, 30.0, open=False)


def _offered(raw: redis.Redis, queue: str = "default", worker: str = WORKER) -> bool:
    member = keys.offer(queue, worker, 30.0)
    return raw.zscore(keys.queue_keys(queue).idle, member) is not None


def _offer_by_hand(raw: redis.Redis, seconds: float = 30.0, queue: str = "default") -> None:
    """An offer as offer.lua writes it, with a deadline ``seconds`` from the server's clock."""
    server_now = float(".".join(str(p) for p in raw.time()))
    raw.zadd(keys.queue_keys(queue).idle, {keys.offer(queue, WORKER, 30.0): server_now + seconds})


def _wait_while_enqueued(backend: RedisBackend, producer: RedisBackend, raw: redis.Redis,
                         waiter: Waiter) -> tuple[list[ClaimedTask], str]:
    """Wait as ``waiter``; once it waits (and offered, if open), enqueue one task."""
    async def main() -> tuple[list[ClaimedTask], str]:
        waiting = asyncio.create_task(backend.wait_for_work(["default"], 5.0, waiter))
        blocked = (lambda: _offered(raw)) if waiter.open else (
            lambda: any(c.get("cmd") == "blpop" for c in raw.client_list()))
        while not blocked():  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        task_id = await asyncio.to_thread(enqueue, producer, new_task())
        return await asyncio.wait_for(waiting, 5.0), task_id[0]

    return asyncio.run(main())


def test_an_open_waiter_is_handed_the_task_leased_to_it(
    backend: RedisBackend, producer: RedisBackend, raw: redis.Redis
) -> None:
    handed, task_id = _wait_while_enqueued(backend, producer, raw, OPEN)
    assert [t.id for t in handed] == [task_id]
    [task] = handed
    stored = row(producer, task_id)
    assert (stored.state, stored.worker_id, stored.attempts) == ("RUNNING", WORKER, 1)
    assert task.attempts == 1 and task.queue == "default"
    assert task.lease_expires_at - stored.started_at == pytest.approx(30.0)
    assert raw.llen(keys.queue_keys("default").signal) == 0, "no token: nobody else wakes"
    assert not _offered(raw), "one task per offer"
    assert int(raw.hget(keys.totals("default"), "enqueued") or 0) == 1
    assert complete(producer, task, b"ok") == [], "the handed token holds the lease"
    assert row(producer, task_id).state == "DONE"


def test_a_closed_waiter_is_woken_to_claim_instead(
    backend: RedisBackend, producer: RedisBackend, raw: redis.Redis
) -> None:
    handed, task_id = _wait_while_enqueued(backend, producer, raw, CLOSED)
    assert handed == []
    assert row(producer, task_id).state == "PENDING"


def test_a_closed_waiter_withdraws_the_offer_it_made(
    backend: RedisBackend, producer: RedisBackend, raw: redis.Redis
) -> None:
    async def wait(waiter: Waiter) -> None:
        await backend.wait_for_work(["default"], 0.3, waiter)

    asyncio.run(wait(OPEN))
    assert _offered(raw)
    asyncio.run(wait(CLOSED))
    assert not _offered(raw)
    assert row(producer, enqueue(producer, new_task())[0]).state == "PENDING"


def test_nothing_is_handed_past_a_waiting_task(backend: RedisBackend, raw: redis.Redis) -> None:
    first = enqueue(backend, new_task(priority=1))[0]
    _offer_by_hand(raw)
    urgent = enqueue(backend, new_task(priority=9))[0]
    assert row(backend, urgent).state == "PENDING", "the claim orders them, not the hand-off"
    assert row(backend, first).state == "PENDING"
    assert _offered(raw)


def test_a_batch_hands_one_task_per_offer_and_wakes_for_the_rest(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    _offer_by_hand(raw)
    first, second, third = enqueue(backend, new_task(), new_task(), new_task())
    assert [row(backend, t).state for t in (first, second, third)] == [
        "RUNNING", "PENDING", "PENDING"]
    assert raw.llen(keys.inbox("default", WORKER)) == 1
    assert raw.llen(keys.queue_keys("default").signal) == 2, "a token for each task left"
    assert int(raw.hget(keys.totals("default"), "enqueued") or 0) == 3


def test_a_task_handed_from_a_partition_names_its_queue(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    backend.declare_queue("parted", 2)
    server_now = float(".".join(str(p) for p in raw.time()))
    for tag in keys.partition_tags("parted", 2):
        raw.zadd(keys.tag_keys(tag).idle, {keys.offer(tag, WORKER, 30.0): server_now + 30.0})
    task_ids = enqueue(backend, new_task("parted"), new_task("parted"))

    async def withdraw() -> list[ClaimedTask]:
        return await backend.withdraw(["parted"], CLOSED)

    handed = asyncio.run(withdraw())
    assert sorted(t.id for t in handed) == sorted(task_ids), "one per partition's offer"
    assert {t.queue for t in handed} == {"parted"}, "the queue, not the partition's tag"
    assert all(complete(backend, t, None) == [] for t in handed)


def test_an_expired_offer_is_not_taken(backend: RedisBackend, raw: redis.Redis) -> None:
    _offer_by_hand(raw, seconds=-1.0)
    task_id = enqueue(backend, new_task())[0]
    assert row(backend, task_id).state == "PENDING"
    assert raw.zcard(keys.queue_keys("default").idle) == 0, "dropped on the way"


def test_the_offer_renewed_last_is_taken_and_a_lapsed_one_never(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    """The worker that offered last finished a task last: its process is the warm one."""
    server_now = float(".".join(str(p) for p in raw.time()))
    idle = keys.queue_keys("default").idle
    raw.zadd(idle, {keys.offer("default", "older", 30.0): server_now + 10.0,
                    keys.offer("default", "newer", 30.0): server_now + 30.0,
                    keys.offer("default", "lapsed", 30.0): server_now - 1.0})
    first, second, third = (enqueue(backend, new_task())[0] for _ in range(3))
    assert [row(backend, t).worker_id for t in (first, second)] == ["newer", "older"]
    assert row(backend, third).state == "PENDING"
    assert raw.exists(idle) == 0, "the lapsed offer is dropped on the way"
    assert [raw.llen(keys.inbox("default", w)) for w in ("newer", "older", "lapsed")] == [1, 1, 0]


def test_a_paused_queue_drops_offers_and_takes_none(
    backend: RedisBackend, producer: RedisBackend, raw: redis.Redis
) -> None:
    _offer_by_hand(raw)
    backend.execute(PauseQueue("default", paused=True))
    assert not _offered(raw)

    async def wait() -> None:
        await backend.wait_for_work(["default"], 0.3, OPEN)

    asyncio.run(wait())
    assert not _offered(raw), "offer.lua refuses a paused queue"
    assert row(producer, enqueue(producer, new_task())[0]).state == "PENDING"


def test_a_claim_that_takes_work_withdraws_the_offer(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    _offer_by_hand(raw)
    assert claim(backend, worker=WORKER) == []
    assert _offered(raw), "a claim that took nothing leaves the worker open"
    enqueue(backend, new_task(delay=0.05))
    wait_until(lambda: bool(claim(backend, worker=WORKER)), message="the delayed task falls due")
    assert not _offered(raw), "the worker may be full now"


def test_withdraw_returns_what_was_handed_and_not_received(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    _offer_by_hand(raw)
    handed_id = enqueue(backend, new_task())[0]
    assert row(backend, handed_id).state == "RUNNING"

    async def withdraw() -> list[ClaimedTask]:
        return await backend.withdraw(["default"], CLOSED)

    [task] = asyncio.run(withdraw())
    assert task.id == handed_id
    assert raw.llen(keys.inbox("default", WORKER)) == 0
    assert row(backend, enqueue(backend, new_task())[0]).state == "PENDING", "no offer left"
    backend.execute(Release([task]))  # what a stopping worker does with it
    released = row(backend, handed_id)
    assert (released.state, released.attempts) == ("PENDING", 0), "no attempt counted"


def test_an_idle_worker_runs_a_handed_task_and_withdraws_when_it_stops(redis_url: str) -> None:
    app = Conveyor(redis_url, lease=5.0, backend_options={"durability": "none"})
    raw = redis.Redis.from_url(redis_url)
    started = threading.Event()
    release = threading.Event()

    @app.task(queue="default")
    def hold() -> None:
        started.set()
        release.wait(10)

    running = RunningWorker(app.worker(["default"], concurrency=2)).start()
    worker_id = running.worker.id
    try:
        idle = keys.queue_keys("default").idle
        member = keys.offer("default", worker_id, 5.0)
        wait_until(lambda: raw.zscore(idle, member) is not None, message="the worker offers")
        handle = hold.enqueue()
        info = handle.info()
        assert info is not None
        assert (info.state, info.worker_id) == ("RUNNING", worker_id), "leased by the enqueue"
        assert started.wait(5)
        # One slot is still free: the worker offers again while the task runs.
        wait_until(lambda: raw.zscore(idle, member) is not None, message="it offers again")
        release.set()
        handle.result(timeout=5)
    finally:
        release.set()
        assert running.stop() == 0
    assert raw.zscore(keys.queue_keys("default").idle, member) is None, "withdrawn"
    late = hold.enqueue()
    late_info = late.info()
    assert late_info is not None and late_info.state == "PENDING"
    raw.close()
    app.close()
