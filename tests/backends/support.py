"""Small builders shared by the conformance tests: they speak only the transition values."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

from conveyor.backends.base import (
    Backend,
    Claim,
    ClaimedTask,
    Complete,
    Completion,
    Enqueue,
    Fail,
    Failure,
    GetTasks,
    ListTasks,
    NewTask,
    TaskRow,
)
from conveyor.ids import new_task_id
from conveyor.serialization import encode_payload

LEASE = 30.0
_counter = itertools.count()


def new_task(
    queue: str = "default",
    priority: int = 5,
    *,
    name: str = "tests.noop",
    args: Sequence[Any] | None = None,
    delay: float = 0.0,
    eta: float | None = None,
    key: str | None = None,
    max_retries: int = 3,
    result_ttl: float = 86400.0,
    timeout: float | None = None,
) -> NewTask:
    """A valid task; its payload carries a serial number so every task is distinguishable."""
    payload = encode_payload(name, tuple(args) if args is not None else (next(_counter),), {})
    return NewTask(
        id=new_task_id(), name=name, queue=queue, payload=payload, priority=priority,
        max_retries=max_retries, delay_seconds=delay, eta=eta, idempotency_key=key,
        timeout_seconds=timeout, result_ttl_seconds=result_ttl,
    )


def enqueue(backend: Backend, *tasks: NewTask) -> list[str]:
    outcomes = backend.execute(Enqueue(list(tasks)))
    return [o.id for o in outcomes]


def enqueue_one(backend: Backend, **fields: Any) -> str:
    return enqueue(backend, new_task(**fields))[0]


def claim(
    backend: Backend,
    queues: Sequence[str] = ("default",),
    limit: int = 1,
    *,
    worker: str = "worker-1",
    lease: float = LEASE,
    oldest_first: int = 0,
) -> list[ClaimedTask]:
    return backend.execute(Claim(worker, list(queues), limit, lease, oldest_first=oldest_first))


def claim_one(backend: Backend, queues: Sequence[str] = ("default",), **options: Any) -> (
    ClaimedTask
):
    claimed = claim(backend, queues, 1, **options)
    assert len(claimed) == 1, f"expected one task claimed from {queues}, got {claimed}"
    return claimed[0]


def row(backend: Backend, task_id: str) -> TaskRow:
    rows = backend.execute(GetTasks([task_id]))
    assert len(rows) == 1, f"task {task_id} not found"
    return rows[0]


def state(backend: Backend, task_id: str) -> str:
    return row(backend, task_id).state


def complete(backend: Backend, task: ClaimedTask, result: bytes | None = None) -> list[str]:
    return backend.execute(Complete([Completion(task.id, task.lease_token, result)]))


def fail(
    backend: Backend,
    task: ClaimedTask,
    retry_in: float | None,
    *,
    error: str = "boom",
    reason: str | None = None,
    worker_lost: bool = False,
) -> list[str]:
    failure = Failure(task.id, task.lease_token, error, retry_in, reason, worker_lost=worker_lost)
    return backend.execute(Fail([failure]))


def claim_in_process(
    url: str, queue: str, batch: int, rounds: int, start: Any, results: Any
) -> None:
    """Run in a spawned process: claim and complete one batch from ``url`` per round, every
    process entering each round together (``start`` is a barrier) so they really contend;
    report the ids taken."""
    from conveyor.backends import open_backend

    backend = open_backend(url)
    taken: list[str] = []
    try:
        backend.execute(ListTasks(limit=1))  # connected and migrated before the race starts
        for _ in range(rounds):
            start.wait(60)
            claimed = claim(backend, [queue], batch, worker=f"proc-{os.getpid()}")
            if claimed:
                backend.execute(
                    Complete([Completion(c.id, c.lease_token, None) for c in claimed])
                )
            taken.extend(c.id for c in claimed)
    finally:
        backend.close()
        results.put(taken)
