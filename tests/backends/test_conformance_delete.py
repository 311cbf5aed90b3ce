"""DeleteTasks (``app.delete``): tasks go by id, in any state but RUNNING, from every place a
backend keeps them: the record, the index of its state (counts, lists, claims), and the
idempotency ledger."""

from __future__ import annotations

import pytest

from backends.conftest import BackendKind
from backends.support import claim, complete, enqueue, new_task, row
from backends.test_conformance_operations import _in_every_state
from conveyor import Conveyor
from conveyor.backends.base import (
    Backend,
    DeleteTasks,
    Enqueue,
    GetTasks,
    ListTasks,
    QueueStatsRead,
)

NOT_RUNNING = ["SCHEDULED", "PENDING", "DONE", "FAILED", "DEAD", "CANCELLED"]


def _counts(backend: Backend, queue: str = "default") -> dict[str, int]:
    found = [c for c in backend.execute(QueueStatsRead()) if c.queue == queue]
    return {s: n for s, n in found[0].counts.items() if n} if found else {}


@pytest.mark.parametrize("start", NOT_RUNNING)
def test_delete_a_task_in_any_state_but_running(backend: Backend, clock, start: str) -> None:
    states = _in_every_state(backend)
    task_id = states[start]
    before = _counts(backend)
    assert backend.execute(DeleteTasks([task_id])) == [task_id]
    assert backend.execute(GetTasks([task_id])) == []
    assert task_id not in {r.id for r in backend.execute(ListTasks(state=start))}
    assert task_id not in {r.id for r in backend.execute(ListTasks())}
    after = _counts(backend)  # its state's index no longer holds it
    assert after.get(start, 0) == before[start] - 1
    assert {s: n for s, n in after.items() if s != start} == {
        s: n for s, n in before.items() if s != start}
    clock.advance(10_000.0)  # a due SCHEDULED or FAILED task would be claimable now
    assert task_id not in {c.id for c in claim(backend, limit=100)}
    assert backend.execute(DeleteTasks([task_id])) == []  # gone: nothing left to delete


def test_delete_leaves_a_running_task_to_its_worker(backend: Backend) -> None:
    states = _in_every_state(backend)
    running = states["RUNNING"]
    before = row(backend, running)
    assert backend.execute(DeleteTasks([running])) == []
    assert row(backend, running) == before


def test_delete_reports_only_what_it_deleted_in_the_order_given(backend: Backend) -> None:
    states = _in_every_state(backend)
    asked = [states["DEAD"], "unknown-id", states["RUNNING"], states["PENDING"], states["DEAD"]]
    assert backend.execute(DeleteTasks(asked)) == [states["DEAD"], states["PENDING"]]
    assert {r.id for r in backend.execute(ListTasks())} == {
        states[s] for s in states if s not in ("DEAD", "PENDING")}
    assert backend.execute(DeleteTasks([])) == []


def test_delete_frees_the_idempotency_key(backend: Backend) -> None:
    [first] = backend.execute(Enqueue([new_task(key="order-7")]))
    [same] = backend.execute(Enqueue([new_task(key="order-7")]))
    assert first.created and not same.created and same.id == first.id
    assert backend.execute(DeleteTasks([first.id])) == [first.id]
    [again] = backend.execute(Enqueue([new_task(key="order-7")]))
    assert again.created and again.id != first.id
    assert [r.idempotency_key for r in backend.execute(GetTasks([again.id]))] == ["order-7"]


def test_delete_of_a_finished_task_frees_its_key(backend: Backend) -> None:
    [done] = backend.execute(Enqueue([new_task(key="report-1")]))
    complete(backend, claim(backend)[0])
    assert backend.execute(DeleteTasks([done.id])) == [done.id]
    [again] = backend.execute(Enqueue([new_task(key="report-1")]))
    assert again.created


def test_delete_across_queues_and_partitions(backend: Backend, backend_kind: BackendKind) -> None:
    backend.declare_queue("hot", 4)
    hot = enqueue(backend, *[new_task("hot", key=f"h{i}") for i in range(8)])
    cold = enqueue(backend, new_task("cold"), new_task("cold", delay=60.0))
    keep = enqueue(backend, new_task("cold"))
    assert sorted(backend.execute(DeleteTasks(hot + cold))) == sorted(hot + cold)
    assert backend.execute(GetTasks(hot + cold)) == []
    assert _counts(backend, "hot") == {}
    assert _counts(backend, "cold") == {"PENDING": 1}
    assert [t.id for t in claim(backend, ["hot", "cold"], limit=10)] == keep
    fresh = backend.execute(Enqueue([new_task("hot", key=f"h{i}") for i in range(8)]))
    assert all(o.created for o in fresh)  # every partition's ledger let its keys go


def test_delete_through_the_app(app: Conveyor) -> None:
    @app.task(queue="default")
    def noop() -> None: ...

    first, second = noop.enqueue().id, noop.enqueue().id
    assert app.delete(first) == [first]
    assert app.delete([first, second, "unknown"]) == [second]
    assert app.get(first) is None and app.get(second) is None
