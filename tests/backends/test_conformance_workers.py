"""The worker registry: RegisterWorker (insert or refresh), UnregisterWorker, ListWorkers, and
the pruning of silent workers."""

from __future__ import annotations

import msgspec

from backends.support import enqueue, new_task
from conveyor import Conveyor
from conveyor.backends.base import (
    Backend,
    ListWorkers,
    Prune,
    RegisterWorker,
    UnregisterWorker,
    WorkerRow,
)


def _worker(worker_id: str, started_at: float, **fields: object) -> WorkerRow:
    row = WorkerRow(worker_id, "host-1", 4242, ("default", "email"), 8, 0, started_at, 0.0)
    return msgspec.structs.replace(row, **fields)


def test_register_lists_the_worker_seen_now(backend: Backend, clock) -> None:
    assert backend.execute(ListWorkers()) == []
    backend.execute(RegisterWorker(_worker("w1", clock.now - 5.0, busy=3)))
    [listed] = backend.execute(ListWorkers())
    assert listed == _worker("w1", clock.now - 5.0, busy=3, last_seen=clock.now)


def test_register_again_refreshes_the_row(backend: Backend, clock) -> None:
    started = clock.now
    backend.execute(RegisterWorker(_worker("w1", started)))
    clock.advance(10.0)
    backend.execute(RegisterWorker(_worker("w1", started, busy=7, concurrency=16)))
    [listed] = backend.execute(ListWorkers())
    assert (listed.busy, listed.concurrency, listed.last_seen) == (7, 16, clock.now)
    assert listed.started_at == started


def test_workers_are_listed_by_start_time(backend: Backend, clock) -> None:
    backend.execute(RegisterWorker(_worker("late", clock.now + 2.0)))
    backend.execute(RegisterWorker(_worker("early", clock.now)))
    backend.execute(RegisterWorker(_worker("middle", clock.now + 1.0)))
    assert [w.id for w in backend.execute(ListWorkers())] == ["early", "middle", "late"]


def test_unregister_removes_only_that_worker(backend: Backend, clock) -> None:
    backend.execute(RegisterWorker(_worker("w1", clock.now)))
    backend.execute(RegisterWorker(_worker("w2", clock.now + 1.0)))
    backend.execute(UnregisterWorker("w1"))
    backend.execute(UnregisterWorker("never-registered"))
    assert [w.id for w in backend.execute(ListWorkers())] == ["w2"]


def test_prune_forgets_silent_workers(backend: Backend, clock) -> None:
    backend.execute(RegisterWorker(_worker("silent", clock.now)))
    clock.advance(200.0)
    backend.execute(RegisterWorker(_worker("alive", clock.now)))
    clock.advance(150.0)
    backend.execute(Prune(worker_silence_seconds=300.0))
    assert [w.id for w in backend.execute(ListWorkers())] == ["alive"]
    clock.advance(200.0)
    backend.execute(Prune(worker_silence_seconds=300.0))
    assert backend.execute(ListWorkers()) == []


def test_app_sees_worker_utilization(app: Conveyor, clock) -> None:
    backend = app.backend
    backend.execute(RegisterWorker(_worker("w1", clock.now, busy=2, concurrency=4)))
    backend.execute(RegisterWorker(_worker("w2", clock.now, busy=0, concurrency=4)))
    stats = app.stats()
    assert (stats.busy_slots, stats.total_slots, stats.utilization) == (2, 8, 0.25)
    assert [w.utilization for w in app.workers()] == [0.5, 0.0]


def test_a_worker_silent_for_five_minutes_is_gone_from_every_read(app: Conveyor, clock) -> None:
    """Only a live worker prunes the registry: with none left, a dead one would count in
    utilization for ever and hide the no_workers alert."""
    backend = app.backend
    backend.execute(RegisterWorker(_worker("dead", clock.now, busy=1, concurrency=2)))
    app.alert(queue="default", min_utilization=0.2)
    clock.advance(200.0)
    backend.execute(RegisterWorker(_worker("alive", clock.now, busy=0, concurrency=2)))
    assert [w.id for w in app.workers()] == ["dead", "alive"]
    clock.advance(150.0)
    assert [w.id for w in app.workers()] == ["alive"]
    assert (app.stats().busy_slots, app.stats().total_slots) == (0, 2)
    clock.advance(200.0)
    assert app.workers() == [] and app.stats().workers == []
    assert len(backend.execute(ListWorkers())) == 2, "still registered: nobody pruned them"
    enqueue(backend, new_task())
    assert [b.rule for b in app.health()] == ["no_workers"]
