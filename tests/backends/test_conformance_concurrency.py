"""Many claimers on one store never get the same task twice: threads, and real processes."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from backends.conftest import BackendKind
from backends.support import claim, claim_in_process, enqueue, new_task
from conveyor.backends.base import Backend, Complete, Completion, ListTasks, QueueStatsRead

THREADS = 8
TASKS = 400


def _drain(client: Backend, worker: str, taken: list[str], errors: list[BaseException],
           start: threading.Barrier) -> None:
    try:
        start.wait(10)
        while True:
            claimed = claim(client, limit=3, worker=worker)
            if not claimed:
                return
            lost = client.execute(
                Complete([Completion(c.id, c.lease_token, None) for c in claimed])
            )
            assert lost == [], f"{worker} lost leases it had just taken: {lost}"
            taken.extend(c.id for c in claimed)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def test_threads_never_claim_the_same_task_twice(
    backend: Backend, backend_kind: BackendKind, open_backend: Callable[[], Backend]
) -> None:
    ids = enqueue(backend, *[new_task(priority=i % 10) for i in range(TASKS)])
    clients = [open_backend() if backend_kind.shared_store else backend for _ in range(THREADS)]
    taken: list[list[str]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=_drain, args=(clients[n], f"w{n}", taken[n], errors, start))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    every = [task_id for part in taken for task_id in part]
    assert [i for i, n in Counter(every).items() if n > 1] == []
    assert sorted(every) == sorted(ids)
    [counts] = backend.execute(QueueStatsRead())
    assert counts.counts == {"DONE": TASKS}


def test_processes_never_claim_the_same_task_twice(
    backend: Backend, backend_kind: BackendKind, backend_url: str
) -> None:
    if not backend_kind.shared_store:
        pytest.skip(f"{backend_kind.name}: other processes cannot reach this store")
    processes, batch = 4, 4
    ids = enqueue(backend, *[new_task() for _ in range(TASKS)])
    rounds = TASKS // (processes * batch) + 2
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(processes), ctx.Queue()
    children = [
        ctx.Process(target=claim_in_process,
                    args=(backend_url, "default", batch, rounds, start, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        taken = [results.get(timeout=60) for _ in children]
    finally:
        for child in children:
            child.join(30)
    assert [child.exitcode for child in children] == [0] * processes
    every = [task_id for part in taken for task_id in part]
    assert [i for i, n in Counter(every).items() if n > 1] == []
    assert sorted(every) == sorted(ids)
    assert all(taken), "every process took part"
    assert {r.state for r in backend.execute(ListTasks(limit=TASKS))} == {"DONE"}
