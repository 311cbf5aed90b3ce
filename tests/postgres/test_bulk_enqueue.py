"""Bulk enqueue by COPY (batches without idempotency keys, from ``plans.COPY_MIN_TASKS``
tasks): sync and async, each queue woken once; batches with keys take the INSERT, and a
caller's own connection (transactional enqueue) keeps its commit and rollback."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from backends.support import new_task
from conveyor.backends.base import Enqueue, ListTasks
from conveyor.backends.postgres import plans
from conveyor.backends.postgres.backend import PostgresBackend


def test_large_batches_take_the_copy_plan_and_keys_or_small_ones_do_not() -> None:
    big = [new_task() for _ in range(plans.COPY_MIN_TASKS)]
    assert plans.spec_for(Enqueue(big)) is plans.ENQUEUE_COPY
    # The INSERT, which on the backend's own connections may wake one idle worker alone
    # (test_offers.py); a caller's connection gets plans.SPECS, which never does.
    assert plans.spec_for(Enqueue(big[:-1])) is plans.ENQUEUE_OWN
    keyed = [*big[:-1], new_task(key="k")]
    assert plans.spec_for(Enqueue(keyed)) is plans.ENQUEUE_OWN


def test_async_copy_enqueue_wakes_each_queue_once(pg_url: str) -> None:
    waiter, producer = PostgresBackend(pg_url), PostgresBackend(pg_url)
    tasks = [new_task("a" if i % 2 else "b") for i in range(100)]
    try:
        listener = waiter._ensure_listener()
        before = listener.notifications

        async def main() -> None:
            waiting = asyncio.create_task(waiter.wait_for_work(["a"], 10.0))
            outcomes = await producer.aexecute(Enqueue(tasks))
            assert [o.id for o in outcomes] == [t.id for t in tasks]
            await asyncio.wait_for(waiting, 5.0)

        asyncio.run(main())
        listed = producer.execute(ListTasks(limit=200))
        assert sorted(r.id for r in listed) == sorted(t.id for t in tasks)
        assert {r.state for r in listed} == {"PENDING"}
        assert listener.notifications - before <= 2  # "a" and "b", once each at most
    finally:
        waiter.close()
        producer.close()


def test_a_large_batch_on_a_callers_connection_commits_and_rolls_back_with_it(
    pg_url: str,
) -> None:
    backend = PostgresBackend(pg_url)
    tasks = [new_task() for _ in range(100)]
    try:
        with psycopg.connect(pg_url) as conn:
            backend.execute_on(conn, Enqueue(tasks))
            conn.rollback()
            assert backend.execute(ListTasks()) == []
            backend.execute_on(conn, Enqueue(tasks))
            conn.commit()
        assert len(backend.execute(ListTasks(limit=200))) == 100
    finally:
        backend.close()


def test_a_failed_copy_rolls_back_and_leaves_the_connection_usable(pg_url: str) -> None:
    backend = PostgresBackend(pg_url, pool_max_size=1)  # the same connection every time
    tasks = [new_task() for _ in range(100)]
    try:
        with pytest.raises(psycopg.errors.UniqueViolation):
            backend.execute(Enqueue([*tasks, tasks[0]]))
        assert backend.execute(ListTasks()) == []
        assert len(backend.execute(Enqueue(tasks))) == 100
        assert len(backend.execute(ListTasks(limit=200))) == 100
    finally:
        backend.close()
