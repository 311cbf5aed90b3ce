"""Reads: GetTasks, ListTasks, QueueStatsRead, NextDueAt, Now; they never change state."""

from __future__ import annotations

from backends.conftest import BackendKind
from backends.support import claim, claim_one, complete, enqueue, fail, new_task, row
from conveyor import Conveyor, TaskState
from conveyor.backends.base import (
    Backend,
    GetTasks,
    ListTasks,
    NextDueAt,
    QueueCounts,
    QueueStatsRead,
)


def test_get_tasks_returns_the_found_ones(backend: Backend) -> None:
    ids = enqueue(backend, new_task(), new_task(), new_task())
    found = backend.execute(GetTasks([ids[2], "missing", ids[0]]))
    assert {r.id for r in found} == {ids[0], ids[2]}
    assert backend.execute(GetTasks([])) == []
    assert backend.execute(GetTasks(["missing"])) == []


def test_list_tasks_in_enqueue_order_with_filters(
    backend: Backend, backend_kind: BackendKind
) -> None:
    a = enqueue(backend, new_task("a", 1), new_task("a", 9), new_task("a", 5))
    b = enqueue(backend, new_task("b"), new_task("b", delay=60.0))
    listed = [r.id for r in backend.execute(ListTasks())]
    if backend_kind.global_order:
        assert listed == a + b
    else:  # the test clock is frozen: only each queue's own order is promised
        assert sorted(listed) == sorted(a + b)
        assert [i for i in listed if i in a] == a and [i for i in listed if i in b] == b
    assert [r.id for r in backend.execute(ListTasks(queue="a"))] == a
    assert [r.id for r in backend.execute(ListTasks(state="SCHEDULED"))] == [b[1]]
    assert [r.id for r in backend.execute(ListTasks(queue="b", state="PENDING"))] == [b[0]]
    assert backend.execute(ListTasks(queue="a", state="SCHEDULED")) == []
    assert backend.execute(ListTasks(queue="missing")) == []


def test_list_tasks_pages(backend: Backend) -> None:
    ids = enqueue(backend, *[new_task() for _ in range(7)])
    pages = [
        [r.id for r in backend.execute(ListTasks(limit=3, offset=offset))]
        for offset in (0, 3, 6, 9)
    ]
    assert pages == [ids[0:3], ids[3:6], ids[6:7], []]


def test_reads_do_not_promote_or_claim(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(delay=1.0))
    clock.advance(5.0)
    backend.execute(ListTasks())
    backend.execute(GetTasks([task_id]))
    backend.execute(QueueStatsRead())
    backend.execute(NextDueAt(["default"]))
    assert row(backend, task_id).state == "SCHEDULED"


def test_queue_stats_count_every_state_per_queue(backend: Backend) -> None:
    assert backend.execute(QueueStatsRead()) == []
    enqueue(backend, *[new_task("a") for _ in range(4)], new_task("a", delay=60.0))
    enqueue(backend, new_task("b"))
    first, second, third = claim(backend, ["a"], limit=3)
    complete(backend, first)
    fail(backend, second, None, reason="not_retryable")
    stats = {q.queue: q for q in backend.execute(QueueStatsRead())}
    assert set(stats) == {"a", "b"}
    assert stats["a"].counts == {"PENDING": 1, "SCHEDULED": 1, "RUNNING": 1, "DONE": 1, "DEAD": 1}
    assert stats["b"].counts == {"PENDING": 1}
    assert third.queue == "a"


def test_queue_stats_oldest_pending(backend: Backend, clock) -> None:
    start = clock.now
    enqueue(backend, new_task("a"))
    clock.advance(10.0)
    enqueue(backend, new_task("a"), new_task("b", delay=5.0))
    stats = {q.queue: q for q in backend.execute(QueueStatsRead())}
    assert stats["a"] == QueueCounts("a", {"PENDING": 2}, start)
    assert stats["b"].oldest_pending_at is None
    claim(backend, ["a"], limit=2)
    stats = {q.queue: q for q in backend.execute(QueueStatsRead())}
    assert stats["a"].oldest_pending_at is None


def test_row_fields_through_a_life(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(name="tests.life", key="life-1"))
    created = clock.now
    clock.advance(1.0)
    claimed = claim_one(backend, worker="w-life")
    clock.advance(1.0)
    complete(backend, claimed, b"\x2a")
    stored = row(backend, task_id)
    assert stored.created_at == created
    assert stored.started_at == created + 1.0
    assert stored.completed_at == created + 2.0
    assert stored.worker_id == "w-life"
    assert stored.idempotency_key == "life-1"
    assert stored.result == b"\x2a"


def test_app_reads(app: Conveyor) -> None:
    @app.task(queue="q")
    def echo(value: str) -> str:
        return value

    handle = echo.enqueue("hello")
    info = app.get(handle.id)
    assert info is not None
    assert (info.name, info.args, info.state) == (echo.name, ("hello",), TaskState.PENDING)
    assert info.created_at.tzinfo is not None
    assert app.get("missing") is None
    assert [i.id for i in app.list_tasks(queue="q", state="pending")] == [handle.id]
    assert app.dead() == []
    stats = app.stats()
    assert stats.queues["q"].count(TaskState.PENDING) == 1
    assert stats.queues["q"].oldest_pending_age == 0.0
    assert stats.workers == []
