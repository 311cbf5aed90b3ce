"""Idempotency keys: one key names one task; a repeated enqueue returns it, even once DONE."""

from __future__ import annotations

from backends.conftest import BackendKind
from backends.support import claim, claim_one, complete, new_task, row
from conveyor import Conveyor, TaskState
from conveyor.backends.base import Backend, Enqueue, ListTasks


def test_same_key_returns_the_existing_task(backend: Backend) -> None:
    first = new_task(key="order-1")
    [created] = backend.execute(Enqueue([first]))
    [again] = backend.execute(Enqueue([new_task(key="order-1", priority=9)]))
    assert created.created is True
    assert (again.id, again.created) == (first.id, False)
    assert len(backend.execute(ListTasks())) == 1
    assert row(backend, first.id).priority == first.priority


def test_same_key_after_done_is_not_run_again(backend: Backend) -> None:
    first = new_task(key="order-2")
    backend.execute(Enqueue([first]))
    complete(backend, claim_one(backend), b"paid")
    [again] = backend.execute(Enqueue([new_task(key="order-2")]))
    assert (again.id, again.created) == (first.id, False)
    assert claim(backend, limit=10) == []
    assert row(backend, first.id).state == "DONE"


def test_same_key_while_running_is_not_duplicated(backend: Backend) -> None:
    first = new_task(key="order-3")
    backend.execute(Enqueue([first]))
    claim_one(backend)
    [again] = backend.execute(Enqueue([new_task(key="order-3")]))
    assert (again.id, again.created) == (first.id, False)
    assert claim(backend, limit=10) == []


def test_distinct_keys_make_distinct_tasks(backend: Backend) -> None:
    outcomes = backend.execute(Enqueue([new_task(key="a"), new_task(key="b"), new_task()]))
    assert all(o.created for o in outcomes)
    assert len({o.id for o in outcomes}) == 3


def test_a_key_repeated_in_one_batch_writes_one_task(backend: Backend) -> None:
    first, second, other = new_task(key="dup"), new_task(key="dup"), new_task(key="other")
    outcomes = backend.execute(Enqueue([first, other, second]))
    assert [(o.id, o.created) for o in outcomes] == [
        (first.id, True), (other.id, True), (first.id, False),
    ]
    assert len(backend.execute(ListTasks())) == 2


def test_key_is_scoped_globally_not_per_queue(backend: Backend, backend_kind: BackendKind) -> None:
    """Redis Cluster keeps one ledger per queue (a key must dedupe atomically with the enqueue,
    and one script reaches one slot), so there the same key in another queue is another task:
    documented in docs/backends.md."""
    first = new_task("a", key="global")
    backend.execute(Enqueue([first]))
    [again] = backend.execute(Enqueue([new_task("b", key="global")]))
    if backend_kind.global_idempotency:
        assert (again.id, again.created) == (first.id, False)
    else:
        assert again.created and again.id != first.id
        [same_queue] = backend.execute(Enqueue([new_task("a", key="global")]))
        assert (same_queue.id, same_queue.created) == (first.id, False)


def test_idempotent_enqueue_through_the_app(app: Conveyor) -> None:
    @app.task(queue="q")
    def signup(user: int) -> None: ...

    first = signup.options(idempotency_key="signup-42").enqueue(42)
    second = signup.options(idempotency_key="signup-42").enqueue(42)
    assert first.created and not second.created
    assert first.id == second.id
    assert first.info().idempotency_key == "signup-42"
    assert [t.id for t in app.list_tasks()] == [first.id]
    assert app.stats().total(TaskState.PENDING) == 1
