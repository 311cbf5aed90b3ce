"""The two runners and the wake-ups: ``aexecute`` answers exactly as ``execute`` does, and an idle
waiter wakes promptly when work arrives (and only times out when none does)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg
import pytest
from msgspec.structs import replace

from backends.conftest import START, Clock
from backends.support import enqueue, new_task
from conveyor import Conveyor
from conveyor.backends.base import (
    Backend,
    Cancel,
    Claim,
    Complete,
    Completion,
    Enqueue,
    Extend,
    Fail,
    Failure,
    GetTasks,
    Lease,
    ListTasks,
    ListWorkers,
    NextDueAt,
    Now,
    Prune,
    Purge,
    QueueStatsRead,
    RecoverExpired,
    RegisterWorker,
    Release,
    Requeue,
    Transition,
    UnregisterWorker,
    WorkerRow,
)
from conveyor.backends.postgres.backend import PostgresBackend

Run = Callable[[Transition[Any]], Awaitable[Any]]


async def _scenario(run: Run, clock: Clock, prefix: str) -> list[Any]:
    """Every transition once, in a life a real queue would see; returns every reply."""
    q = f"{prefix}-queue"

    def task(n: int, **fields: Any) -> Any:
        return replace(new_task(q, args=(n,), **fields), id=f"{prefix}-{n}")

    replies: list[Any] = []

    async def step(op: Transition[Any]) -> Any:
        reply = await run(op)
        replies.append((type(op).__name__, reply))
        return reply

    await step(Enqueue([task(1), task(2, priority=9), task(3, delay=10.0), task(4, key=q)]))
    await step(Enqueue([task(5, key=q)]))
    first = {c.id: c for c in await step(Claim("w", [q], 2, 30.0))}
    one, two = first[f"{prefix}-1"], first[f"{prefix}-2"]
    await step(Complete([Completion(two.id, two.lease_token, b"ok"),
                         Completion(one.id, "forged", None)]))
    await step(Extend("w", [Lease(one.id, one.lease_token)], 60.0))
    await step(Fail([Failure(one.id, one.lease_token, "boom", 5.0)]))
    await step(NextDueAt([q]))
    clock.advance(10.0)
    second = await step(Claim("w", [q], 10, 30.0, oldest_first=1))
    by_id = {c.id: c for c in second}
    await step(Release([Lease(f"{prefix}-1", by_id[f"{prefix}-1"].lease_token)]))
    await step(Fail([Failure(f"{prefix}-3", by_id[f"{prefix}-3"].lease_token, "bad", None,
                             "not_retryable")]))
    await step(Complete([Completion(f"{prefix}-4", by_id[f"{prefix}-4"].lease_token, None)]))
    await step(Cancel([f"{prefix}-1", f"{prefix}-2"]))
    await step(Requeue([f"{prefix}-1", f"{prefix}-3", f"{prefix}-4"]))
    await step(Purge(q, "DONE"))
    lost = (await step(Claim("w", [q], 10, 1.0)))
    clock.advance(2.0)
    await step(RecoverExpired(max_worker_lost=1))
    await step(GetTasks([f"{prefix}-{n}" for n in range(1, 6)]))
    await step(ListTasks(queue=q))
    stats = await step(QueueStatsRead())
    replies[-1] = ("QueueStatsRead", [s for s in stats if s.queue == q])
    await step(RegisterWorker(WorkerRow(f"{prefix}-w", "h", 1, (q,), 4, 1, clock.now, 0.0)))
    workers = await step(ListWorkers())
    replies[-1] = ("ListWorkers", [w for w in workers if w.id == f"{prefix}-w"])
    await step(UnregisterWorker(f"{prefix}-w"))
    await step(Now())
    await step(Prune())
    assert lost, "the scenario should end with a recovered lease"
    return replies


def _normalized(replies: list[Any], prefix: str) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, msgspec.Struct):
            return record(value, msgspec.structs.asdict(value))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return record(value, {f.name: getattr(value, f.name)
                                  for f in dataclasses.fields(value)})
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    def record(value: Any, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        fields = {name: plain(field) for name, field in fields.items()}
        if "lease_token" in fields and fields["lease_token"] is not None:
            fields["lease_token"] = "<token>"
        return (type(value).__name__, fields)

    text = repr(plain(replies)).replace(prefix, "<prefix>")
    return re.sub(r"payload': b'[^']*'", "payload': <payload>", text)


def test_async_runner_answers_as_the_sync_runner(backend: Backend, clock: Clock) -> None:
    async def run_sync(op: Transition[Any]) -> Any:
        return backend.execute(op)

    async def run_async(op: Transition[Any]) -> Any:
        return await backend.aexecute(op)

    clock.now = START
    sync_replies = asyncio.run(_scenario(run_sync, clock, "sync"))
    clock.now = START
    async_replies = asyncio.run(_scenario(run_async, clock, "async"))
    assert _normalized(async_replies, "async") == _normalized(sync_replies, "sync")


def test_async_runner_raises_as_the_sync_runner(backend: Backend) -> None:
    task = new_task()
    enqueue(backend, task)
    duplicate = Enqueue([replace(new_task(), id=task.id)])
    with pytest.raises(Exception) as sync_error:  # noqa: PT011 - the backend's own error type
        backend.execute(duplicate)
    with pytest.raises(type(sync_error.value)):
        asyncio.run(backend.aexecute(duplicate))


def test_async_runner_serves_concurrent_callers(backend: Backend) -> None:
    async def main() -> list[list[Any]]:
        return await asyncio.gather(
            *[backend.aexecute(Enqueue([new_task(args=(n,))])) for n in range(50)]
        )

    outcomes = asyncio.run(main())
    assert len({o[0].id for o in outcomes}) == 50
    assert len(backend.execute(ListTasks())) == 50


def test_aenqueue_through_the_app(app: Conveyor) -> None:
    @app.task(queue="q")
    def add(a: int, b: int) -> int:
        return a + b

    async def main() -> Any:
        handle = await add.aenqueue(1, 2)
        return handle, await handle.ainfo()

    handle, info = asyncio.run(main())
    assert (info.id, info.args, info.state) == (handle.id, (1, 2), "PENDING")


def test_wait_for_work_times_out_without_work(backend: Backend) -> None:
    started = time.monotonic()
    asyncio.run(backend.wait_for_work(["default"], 0.2))
    assert 0.18 <= time.monotonic() - started < 1.0


async def _woken_by(backend: Backend, producer: Backend) -> float:
    """Seconds between an enqueue from another thread and the waiter's return."""
    waiter = asyncio.create_task(backend.wait_for_work(["default"], 10.0))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not waiter.done()
    enqueued_at: list[float] = []

    def produce() -> None:
        enqueue(producer, new_task())
        enqueued_at.append(time.monotonic())

    thread = threading.Thread(target=produce)
    thread.start()
    await waiter
    woke_at = time.monotonic()
    thread.join(10)
    return woke_at - enqueued_at[0]


def test_wait_for_work_wakes_on_an_enqueue_from_another_thread(backend: Backend) -> None:
    assert asyncio.run(_woken_by(backend, backend)) < 0.5


def test_wait_for_work_wakes_on_an_enqueue_by_another_client(
    backend: Backend, other_backend: Backend
) -> None:
    assert asyncio.run(_woken_by(backend, other_backend)) < 0.5


def test_wait_for_change_times_out_without_change(backend: Backend) -> None:
    """PostgreSQL's signal is the cluster's next transaction id, which any write in any database
    of a shared server moves (documented): there every early return must be explained by such
    a write, and a quiet window is waited for, up to 20 tries."""
    waited = []
    for _ in range(20):
        mark = _cluster_write_mark(backend)
        started = time.monotonic()
        backend.wait_for_change(0.2)
        waited.append(time.monotonic() - started)
        if waited[-1] >= 0.18 or mark is None:
            break
        assert _cluster_write_mark(backend) != mark, f"returned early without a change: {waited}"
    else:
        pytest.skip(f"the shared PostgreSQL server never went 0.2 s without a write: {waited}")
    assert max(waited) >= 0.18 and all(w < 1.0 for w in waited), waited


def _cluster_write_mark(backend: Backend) -> str | None:
    """PostgreSQL: the cluster's next transaction id (what its ``wait_for_change`` watches);
    None elsewhere."""
    if not isinstance(backend, PostgresBackend):
        return None
    with psycopg.connect(backend.url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
    return str(row[0]) if row else None


def _wakes_promptly(backend: Backend, write_once: Callable[[int], bool]) -> None:
    """Call ``write_once(i)`` every 20 ms from another thread (until it returns False or the
    waiter is back): ``wait_for_change`` must return well before its 10 s timeout."""
    done = threading.Event()

    def keep_writing() -> None:
        i = 0
        while not done.is_set() and write_once(i):
            i += 1
            done.wait(0.02)

    thread = threading.Thread(target=keep_writing)
    started = time.monotonic()
    thread.start()
    try:
        backend.wait_for_change(10.0)
    finally:
        done.set()
        thread.join(10)
    assert time.monotonic() - started < 1.0


def test_wait_for_change_wakes_on_a_write(backend: Backend) -> None:
    """A producer keeps writing until the waiter returns, so the wake-up is the one measured."""
    _wakes_promptly(backend, lambda i: enqueue(backend, new_task()) is not None)


def test_wait_for_change_wakes_on_a_completion(backend: Backend) -> None:
    """``TaskHandle.result()`` waits here for the worker's Complete: it must wake for it."""
    enqueue(backend, *[new_task() for _ in range(100)])
    claimed = backend.execute(Claim("w", ["default"], 100, 60.0))

    def complete(i: int) -> bool:
        if i >= len(claimed):
            return False
        backend.execute(Complete([Completion(claimed[i].id, claimed[i].lease_token, None)]))
        return True

    _wakes_promptly(backend, complete)


def test_a_loop_that_released_the_backend_ends_while_its_pool_grows(
    open_backend: Callable[[], Backend],
) -> None:
    """A worker whose loop ended while its PostgreSQL pool was still connecting (grown by a
    burst of callers) ignored SIGTERM: ``asyncio.run`` cancelled the pool's task in the
    middle of a connect, the pool swallowed it, and the loop never closed (2 runs in 10
    without ``release_loop``). Released first, every loop ends; the backend then serves new
    loops afresh."""
    backend = open_backend()
    for _ in range(5):
        async def main() -> None:
            await asyncio.gather(*[backend.aexecute(Now()) for _ in range(30)])
            await backend.release_loop()

        loop_thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        loop_thread.start()
        loop_thread.join(15)
        assert not loop_thread.is_alive(), "the loop did not end"
    assert isinstance(asyncio.run(backend.aexecute(Now())), float)
    assert isinstance(backend.execute(Now()), float)
