"""Enqueue: PENDING when due, SCHEDULED when delayed; batches are one atomic write."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from backends.support import claim, enqueue, new_task, row
from conveyor import Conveyor, SerializationError, TaskState
from conveyor.backends.base import (
    Backend,
    Enqueue,
    GetTasks,
    ListTasks,
    MetricsRead,
    NextDueAt,
    Now,
)
from conveyor.serialization import decode_payload


def test_enqueue_writes_a_pending_task_with_every_field(backend: Backend) -> None:
    task = new_task("mail", 7, name="tests.send", args=("a@x", 3), max_retries=4, timeout=12.5,
                    result_ttl=60.0)
    [outcome] = backend.execute(Enqueue([task]))
    assert outcome.id == task.id
    assert outcome.created is True
    stored = row(backend, task.id)
    assert (stored.name, stored.queue, stored.priority, stored.state) == (
        "tests.send", "mail", 7, "PENDING",
    )
    assert decode_payload(stored.payload) == (("a@x", 3), {})
    assert (stored.attempts, stored.max_retries, stored.worker_lost) == (0, 4, 0)
    assert stored.timeout_seconds == 12.5
    assert stored.started_at is None and stored.completed_at is None
    assert stored.worker_id is None and stored.error is None and stored.result is None
    assert stored.idempotency_key is None and stored.dead_reason is None


def test_enqueue_stamps_created_and_scheduled_with_the_backend_clock(
    backend: Backend, clock
) -> None:
    [task_id] = enqueue(backend, new_task())
    stored = row(backend, task_id)
    assert stored.created_at == clock.now
    assert stored.scheduled_at == clock.now


def test_enqueue_many_returns_ids_in_order(backend: Backend) -> None:
    tasks = [new_task(priority=i % 10) for i in range(50)]
    outcomes = backend.execute(Enqueue(tasks))
    assert [o.id for o in outcomes] == [t.id for t in tasks]
    assert all(o.created for o in outcomes)
    listed = backend.execute(ListTasks(limit=100))
    assert [r.id for r in listed] == [t.id for t in tasks]


def test_enqueue_of_nothing_writes_nothing(backend: Backend) -> None:
    assert backend.execute(Enqueue([])) == []
    assert backend.execute(ListTasks()) == []


def test_a_failing_batch_writes_nothing(backend: Backend) -> None:
    """One bad row (here a duplicate id) aborts the whole batch: one transaction."""
    first, second = new_task(), new_task()
    duplicate = replace(new_task(), id=first.id)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the error type is the backend's own
        backend.execute(Enqueue([first, second, duplicate]))
    assert not isinstance(raised.value, AssertionError)
    assert backend.execute(ListTasks()) == []
    assert backend.execute(GetTasks([first.id, second.id])) == []


def test_a_large_mixed_batch_is_stored_like_single_enqueues(backend: Backend, clock) -> None:
    """Large batches may take another path (PostgreSQL streams them with COPY): every row's
    state, due time and fields, the outcome order and the metrics must be the same."""
    minute = int(clock.now // 60)
    kinds = [{}, {"delay": 10.0}, {"eta": clock.now - 5.0}, {"eta": clock.now + 7.0},
             {"delay": 3.0, "eta": clock.now + 1.0}, {"timeout": 2.5, "priority": 9}]
    tasks = [new_task("a" if i % 3 else "b", **kinds[i % len(kinds)])  # type: ignore[arg-type]
             for i in range(300)]
    outcomes = backend.execute(Enqueue(tasks))
    assert [(o.id, o.created) for o in outcomes] == [(t.id, True) for t in tasks]
    for i, task in enumerate(tasks):
        stored = row(backend, task.id)
        due = {1: clock.now + 10.0, 3: clock.now + 7.0, 4: clock.now + 1.0}.get(i % 6, clock.now)
        assert (stored.queue, stored.priority, stored.payload, stored.timeout_seconds) == (
            task.queue, task.priority, task.payload, task.timeout_seconds)
        assert stored.created_at == clock.now
        assert stored.scheduled_at == due
        assert stored.state == ("SCHEDULED" if due > clock.now else "PENDING")
        assert stored.attempts == 0 and stored.idempotency_key is None
    counted = {"a": 0.0, "b": 0.0}
    for c in backend.execute(MetricsRead(minute, minute)):
        if c.name == "enqueued" and c.minute == minute:
            counted[c.queue] += c.value
    assert counted == {"a": 200, "b": 100}


def test_a_large_failing_batch_writes_nothing(backend: Backend) -> None:
    tasks = [new_task() for _ in range(200)]
    tasks.append(replace(new_task(), id=tasks[0].id))
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the error type is the backend's own
        backend.execute(Enqueue(tasks))
    assert not isinstance(raised.value, AssertionError)
    assert backend.execute(ListTasks()) == []


def test_enqueue_many_with_one_unserializable_item_writes_nothing(app: Conveyor) -> None:
    @app.task(queue="q")
    def noop(x: object) -> None: ...

    calls = [((1,), {}), ((2,), {}), ((object(),), {}), ((4,), {})]
    with pytest.raises(SerializationError):
        noop.enqueue_many(calls)
    assert app.list_tasks() == []
    assert app.stats().queues == {}


def test_delayed_task_is_scheduled_at_now_plus_delay(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(delay=10.0))
    stored = row(backend, task_id)
    assert stored.state == "SCHEDULED"
    assert stored.scheduled_at == clock.now + 10.0


def test_delayed_task_is_never_claimed_before_it_is_due(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(delay=10.0))
    assert claim(backend) == []
    clock.advance(9.999)
    assert claim(backend) == []
    assert row(backend, task_id).state == "SCHEDULED"
    clock.advance(0.001)
    [claimed] = claim(backend)
    assert claimed.id == task_id
    assert claimed.attempts == 1


def test_eta_is_absolute_and_wins_over_delay(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(delay=1.0, eta=clock.now + 100.0))
    assert row(backend, task_id).scheduled_at == clock.now + 100.0
    clock.advance(50.0)
    assert claim(backend) == []
    clock.advance(50.0)
    assert [c.id for c in claim(backend)] == [task_id]


def test_eta_in_the_past_is_pending_and_due_now(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(eta=clock.now - 3600.0))
    stored = row(backend, task_id)
    assert stored.state == "PENDING"
    assert stored.scheduled_at == clock.now
    assert [c.id for c in claim(backend)] == [task_id]


def test_next_due_at_follows_scheduled_tasks(backend: Backend, clock) -> None:
    assert backend.execute(NextDueAt(["default"])) is None
    enqueue(backend, new_task(delay=30.0), new_task(delay=5.0), new_task("other", delay=1.0))
    enqueue(backend, new_task())  # PENDING: not a due time
    assert backend.execute(NextDueAt(["default"])) == clock.now + 5.0
    assert backend.execute(NextDueAt(["default", "other"])) == clock.now + 1.0
    assert backend.execute(NextDueAt(["missing"])) is None


def test_now_is_the_backend_clock(backend: Backend, clock) -> None:
    assert backend.execute(Now()) == clock.now
    clock.advance(12.5)
    assert backend.execute(Now()) == clock.now


def test_enqueue_through_the_app_reports_pending_state(app: Conveyor) -> None:
    @app.task(queue="q", priority=3)
    def add(a: int, b: int) -> int:
        return a + b

    handles = add.enqueue_many([((1, 2), {}), ((3,), {"b": 4})])
    infos = [h.info() for h in handles]
    assert [(i.args, i.kwargs) for i in infos] == [((1, 2), {}), ((3,), {"b": 4})]
    assert all(i.state == TaskState.PENDING and i.priority == 3 for i in infos)
    assert app.stats().queues["q"].count("PENDING") == 2
