"""Operator actions: cancel, requeue, purge, and the pruning of finished tasks."""

from __future__ import annotations

import pytest

from backends.support import claim, claim_one, complete, enqueue, fail, new_task, row
from conveyor import Conveyor, InvalidOptionError, TaskState
from conveyor.backends.base import (
    Backend,
    Cancel,
    GetTasks,
    ListTasks,
    Prune,
    Purge,
    Requeue,
)


def _in_every_state(backend: Backend) -> dict[str, str]:
    """One task in each state, by state name."""
    ids = enqueue(backend, *[new_task() for _ in range(4)])
    claimed = {c.id: c for c in claim(backend, limit=4)}
    complete(backend, claimed[ids[1]])
    fail(backend, claimed[ids[2]], 500.0)
    fail(backend, claimed[ids[3]], None, reason="not_retryable")
    [scheduled, pending, cancelled] = enqueue(
        backend, new_task(delay=1000.0), new_task(), new_task()
    )
    assert backend.execute(Cancel([cancelled])) == [cancelled]
    states = {
        "SCHEDULED": scheduled, "PENDING": pending, "RUNNING": ids[0], "DONE": ids[1],
        "FAILED": ids[2], "DEAD": ids[3], "CANCELLED": cancelled,
    }
    assert {state: row(backend, i).state for state, i in states.items()} == {
        state: state for state in states
    }
    return states


@pytest.mark.parametrize("start", ["SCHEDULED", "PENDING", "FAILED"])
def test_cancel_a_task_that_has_not_run(backend: Backend, clock, start: str) -> None:
    task_id = _in_every_state(backend)[start]
    clock.advance(1.0)
    assert backend.execute(Cancel([task_id])) == [task_id]
    stored = row(backend, task_id)
    assert stored.state == "CANCELLED"
    assert stored.completed_at == clock.now
    clock.advance(10_000.0)
    assert task_id not in {c.id for c in claim(backend, limit=100)}


@pytest.mark.parametrize("start", ["RUNNING", "DONE", "DEAD", "CANCELLED"])
def test_cancel_refuses_started_or_finished_tasks(backend: Backend, start: str) -> None:
    task_id = _in_every_state(backend)[start]
    before = row(backend, task_id)
    assert backend.execute(Cancel([task_id])) == []
    assert row(backend, task_id) == before


def test_cancel_reports_only_what_it_cancelled(backend: Backend) -> None:
    states = _in_every_state(backend)
    every = [states[s] for s in sorted(states)] + ["unknown-id"]
    cancelled = backend.execute(Cancel(every))
    assert set(cancelled) == {states["SCHEDULED"], states["PENDING"], states["FAILED"]}


@pytest.mark.parametrize("start", ["DEAD", "CANCELLED"])
def test_requeue_returns_the_task_with_a_fresh_budget(backend: Backend, clock, start: str) -> None:
    task_id = _in_every_state(backend)[start]
    clock.advance(5.0)
    assert backend.execute(Requeue([task_id])) == [task_id]
    stored = row(backend, task_id)
    assert stored.state == "PENDING"
    assert (stored.attempts, stored.worker_lost) == (0, 0)
    assert stored.dead_reason is None
    assert stored.completed_at is None
    assert stored.scheduled_at == clock.now
    assert task_id in {c.id for c in claim(backend, limit=100)}
    assert row(backend, task_id).attempts == 1


@pytest.mark.parametrize("start", ["SCHEDULED", "PENDING", "RUNNING", "DONE", "FAILED"])
def test_requeue_refuses_live_and_done_tasks(backend: Backend, start: str) -> None:
    """A DONE task is never run again (its idempotency key promises so)."""
    task_id = _in_every_state(backend)[start]
    before = row(backend, task_id)
    assert backend.execute(Requeue([task_id, "unknown-id"])) == []
    assert row(backend, task_id) == before


def test_requeue_after_worker_lost_resets_the_count(backend: Backend, clock) -> None:
    from conveyor.backends.base import RecoverExpired

    [task_id] = enqueue(backend, new_task())
    claim_one(backend, lease=1.0)
    clock.advance(2.0)
    backend.execute(RecoverExpired(max_worker_lost=1))
    assert row(backend, task_id).dead_reason == "worker_lost"
    backend.execute(Requeue([task_id]))
    again = claim_one(backend)
    assert (again.attempts, again.worker_lost) == (1, 0)


def test_purge_deletes_one_state_of_one_queue(backend: Backend) -> None:
    a = enqueue(backend, new_task("a"), new_task("a"), new_task("a"))
    b = enqueue(backend, new_task("b"))
    for claimed in claim(backend, ["a", "b"], limit=3):
        fail(backend, claimed, None, reason="not_retryable")
    # a[0], a[1], a[2] are DEAD; b[0] is PENDING
    assert backend.execute(Purge("b", "DEAD")) == 0
    assert backend.execute(Purge("a", "PENDING")) == 0
    assert backend.execute(Purge("a", "DEAD")) == 3
    assert backend.execute(GetTasks(a)) == []
    assert [r.id for r in backend.execute(GetTasks(b))] == b


def test_purge_without_queue_covers_every_queue(backend: Backend) -> None:
    enqueue(backend, new_task("a"), new_task("b"), new_task("c", delay=60.0))
    assert backend.execute(Purge(None, "PENDING")) == 2
    assert [r.state for r in backend.execute(ListTasks())] == ["SCHEDULED"]


def test_purge_through_the_app_refuses_running(app: Conveyor) -> None:
    with pytest.raises(InvalidOptionError):
        app.purge("default", TaskState.RUNNING)
    with pytest.raises(InvalidOptionError):
        app.purge("default", "NOT_A_STATE")


def test_prune_deletes_done_and_cancelled_past_their_ttl(backend: Backend, clock) -> None:
    [done, cancelled, young] = enqueue(
        backend, new_task(result_ttl=10.0), new_task(result_ttl=10.0), new_task(result_ttl=100.0)
    )
    backend.execute(Cancel([cancelled]))
    complete(backend, claim_one(backend))  # done: it was enqueued first
    complete(backend, claim_one(backend))  # young
    clock.advance(10.0)
    assert backend.execute(Prune()) == 0
    clock.advance(0.5)
    assert backend.execute(Prune()) == 2
    assert [r.id for r in backend.execute(GetTasks([done, cancelled, young]))] == [young]
    clock.advance(100.0)
    assert backend.execute(Prune()) == 1


def test_prune_never_deletes_dead_or_waiting_tasks(backend: Backend, clock) -> None:
    ids = enqueue(
        backend, *[new_task(result_ttl=1.0) for _ in range(3)], new_task(result_ttl=1.0, delay=5.0)
    )
    first, second = claim(backend, limit=2)
    fail(backend, first, None, reason="not_retryable")
    fail(backend, second, 1e6)
    clock.advance(1e7)
    assert backend.execute(Prune()) == 0
    assert len(backend.execute(GetTasks(ids))) == 4


def test_prune_keeps_running_tasks(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(result_ttl=0.0))
    claim_one(backend, lease=1e9)
    clock.advance(1e6)
    assert backend.execute(Prune()) == 0
    assert row(backend, task_id).state == "RUNNING"


def test_requeued_cancelled_task_is_not_pruned(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(result_ttl=1.0))
    backend.execute(Cancel([task_id]))
    backend.execute(Requeue([task_id]))
    clock.advance(100.0)
    assert backend.execute(Prune()) == 0
    assert row(backend, task_id).state == "PENDING"


def test_dead_letter_queue_through_the_app(app: Conveyor) -> None:
    @app.task(queue="q")
    def flaky(n: int) -> None: ...

    handles = flaky.enqueue_many([((n,), {}) for n in range(3)])
    backend = app.backend
    for claimed in claim(backend, ["q"], limit=2):
        fail(backend, claimed, None, error="RuntimeError: no", reason="not_retryable")
    dead = app.dead()
    assert [d.id for d in dead] == [h.id for h in handles[:2]]
    assert all(d.state == TaskState.DEAD and d.dead_reason == "not_retryable" for d in dead)
    assert dead[0].args == (0,)
    assert app.dead(queue="other") == []
    assert app.requeue(handles[0].id) == [handles[0].id]
    assert handles[0].info().state == TaskState.PENDING
    assert app.requeue([handles[2].id]) == []
    assert app.purge("q", "dead") == 1
    assert app.get(handles[1].id) is None
    assert app.cancel(handles[2].id) is True
    assert app.cancel(handles[2].id) is False
    assert handles[2].info().state == TaskState.CANCELLED
