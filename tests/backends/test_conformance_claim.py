"""Claim: due tasks are promoted, then leased by priority (FIFO within one), plus an
oldest-first share; queues are served in the order given."""

from __future__ import annotations

import pytest

from backends.support import LEASE, claim, claim_one, enqueue, new_task, row
from conveyor.backends.base import Backend, Claim


def test_claim_from_an_empty_queue_returns_nothing(backend: Backend) -> None:
    assert claim(backend, limit=10) == []


def test_claim_leases_the_task_to_the_worker(backend: Backend, clock) -> None:
    task = new_task(priority=4, name="tests.claimed", key="k-1", timeout=5.0, result_ttl=42.0)
    enqueue(backend, task)
    claimed = claim_one(backend, worker="w-7", lease=12.0)
    assert (claimed.id, claimed.name, claimed.queue, claimed.payload) == (
        task.id, task.name, task.queue, task.payload,
    )
    assert claimed.priority == 4
    assert claimed.attempts == 1
    assert claimed.max_retries == task.max_retries
    assert claimed.worker_lost == 0
    assert claimed.idempotency_key == "k-1"
    assert claimed.timeout_seconds == 5.0
    assert claimed.result_ttl_seconds == 42.0
    assert claimed.created_at == clock.now
    assert claimed.scheduled_at == clock.now
    assert claimed.lease_expires_at == clock.now + 12.0
    assert claimed.lease_token
    stored = row(backend, task.id)
    assert stored.state == "RUNNING"
    assert stored.attempts == 1
    assert stored.worker_id == "w-7"
    assert stored.started_at == clock.now


def test_lease_deadline_comes_from_the_backend_clock_at_claim_time(
    backend: Backend, clock
) -> None:
    enqueue(backend, new_task())
    clock.advance(100.0)
    claimed = claim_one(backend, lease=7.5)
    assert claimed.lease_expires_at == clock.now + 7.5


def test_a_claimed_task_is_not_claimed_again(backend: Backend) -> None:
    enqueue(backend, new_task())
    claim_one(backend)
    assert claim(backend, limit=10, worker="worker-2") == []


def test_every_claim_gets_a_fresh_lease_token(backend: Backend) -> None:
    ids = enqueue(backend, *[new_task() for _ in range(20)])
    claimed = claim(backend, limit=20)
    assert sorted(c.id for c in claimed) == sorted(ids)
    assert len({c.lease_token for c in claimed}) == 20


def test_claim_honours_the_limit(backend: Backend) -> None:
    enqueue(backend, *[new_task() for _ in range(5)])
    assert len(claim(backend, limit=3)) == 3
    assert len(claim(backend, limit=3)) == 2
    assert claim(backend, limit=3) == []


def test_priority_order_then_fifo(backend: Backend) -> None:
    tasks = [new_task(priority=p) for p in (0, 5, 9, 0, 5, 9, 5)]
    enqueue(backend, *tasks)
    order = [claim_one(backend).id for _ in tasks]
    by_priority = sorted(range(len(tasks)), key=lambda i: (-tasks[i].priority, i))
    assert order == [tasks[i].id for i in by_priority]


def test_a_batch_claim_takes_the_most_urgent(backend: Backend) -> None:
    low = [new_task(priority=1) for _ in range(5)]
    high = [new_task(priority=8) for _ in range(3)]
    enqueue(backend, *low, *high)
    claimed = claim(backend, limit=4)
    assert {c.id for c in claimed} == {t.id for t in high} | {low[0].id}


def test_priority_9_overtakes_a_backlog_of_1000(backend: Backend) -> None:
    enqueue(backend, *[new_task(priority=1) for _ in range(1000)])
    [urgent] = enqueue(backend, new_task(priority=9))
    assert claim_one(backend).id == urgent


def test_oldest_first_share_takes_the_oldest_whatever_its_priority(backend: Backend) -> None:
    [old] = enqueue(backend, new_task(priority=0))
    enqueue(backend, *[new_task(priority=9) for _ in range(5)])
    [claimed] = claim(backend, limit=1, oldest_first=1)
    assert claimed.id == old


def test_oldest_first_share_is_part_of_the_limit(backend: Backend) -> None:
    [old] = enqueue(backend, new_task(priority=0))
    [urgent, _] = enqueue(backend, new_task(priority=9), new_task(priority=9))
    enqueue(backend, new_task(priority=0))
    claimed = claim(backend, limit=2, oldest_first=1)
    assert {c.id for c in claimed} == {old, urgent}


def test_oldest_first_goes_by_due_time_not_enqueue_time(backend: Backend, clock) -> None:
    [late] = enqueue(backend, new_task(priority=0, delay=10.0))
    clock.advance(1.0)
    [early] = enqueue(backend, new_task(priority=0))
    clock.advance(20.0)
    enqueue(backend, new_task(priority=9))
    [claimed] = claim(backend, limit=1, oldest_first=1)
    assert claimed.id == early
    assert late != early


def test_oldest_first_larger_than_limit_takes_only_limit(backend: Backend) -> None:
    enqueue(backend, *[new_task() for _ in range(5)])
    assert len(claim(backend, limit=2, oldest_first=10)) == 2


def test_claim_only_serves_the_given_queues(backend: Backend) -> None:
    enqueue(backend, new_task("a"), new_task("b"))
    assert claim(backend, ["c"], limit=10) == []
    [claimed] = claim(backend, ["b"], limit=10)
    assert claimed.queue == "b"


def test_multi_queue_claim_serves_queues_in_the_given_order(backend: Backend) -> None:
    a = enqueue(backend, new_task("a"), new_task("a"))
    b = enqueue(backend, new_task("b"), new_task("b"))
    first = claim(backend, ["a", "b"], limit=3)
    assert {c.id for c in first} == {*a, b[0]}
    second = claim(backend, ["b", "a"], limit=3)
    assert [c.id for c in second] == [b[1]]


def test_multi_queue_claim_promotes_due_tasks_of_every_queue(backend: Backend, clock) -> None:
    enqueue(backend, new_task("a", delay=5.0), new_task("b", delay=5.0))
    assert claim(backend, ["a", "b"], limit=10) == []
    clock.advance(5.0)
    assert {c.queue for c in claim(backend, ["a", "b"], limit=10)} == {"a", "b"}


def test_due_scheduled_tasks_join_in_priority_order(backend: Backend, clock) -> None:
    [pending] = enqueue(backend, new_task(priority=5))
    [delayed] = enqueue(backend, new_task(priority=9, delay=1.0))
    clock.advance(1.0)
    assert [claim_one(backend).id for _ in range(2)] == [delayed, pending]


@pytest.mark.parametrize("lease", [0.5, LEASE, 3600.0])
def test_lease_length_is_the_claims(backend: Backend, clock, lease: float) -> None:
    enqueue(backend, new_task())
    [claimed] = backend.execute(Claim("w", ["default"], 1, lease))
    assert claimed.lease_expires_at == pytest.approx(clock.now + lease)


def test_claimed_times_and_durations_are_floats(backend: Backend) -> None:
    """Whole-number times must not come back as ints (SQLite's RETURNING did)."""
    enqueue(backend, new_task(timeout=5.0, result_ttl=60.0))
    claimed = claim_one(backend, lease=30.0)
    for field in ("lease_expires_at", "created_at", "scheduled_at", "timeout_seconds",
                  "result_ttl_seconds"):
        assert type(getattr(claimed, field)) is float, field
    for name in ("created_at", "scheduled_at", "started_at", "timeout_seconds"):
        assert type(getattr(row(backend, claimed.id), name)) is float, name


def test_min_priority_takes_only_tasks_at_least_that_urgent(backend: Backend) -> None:
    low = enqueue(backend, *[new_task(priority=p) for p in (0, 3, 5)])
    urgent = enqueue(backend, new_task(priority=6), new_task(priority=9))
    taken = backend.execute(Claim("w", ["default"], 10, LEASE, oldest_first=3, min_priority=6))
    assert sorted(c.id for c in taken) == sorted(urgent)
    assert {row(backend, i).state for i in low} == {"PENDING"}
    assert backend.execute(Claim("w", ["default"], 10, LEASE, min_priority=6)) == []
    assert sorted(c.id for c in claim(backend, limit=10)) == sorted(low)
