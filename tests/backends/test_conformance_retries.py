"""Fail: RUNNING -> FAILED with a retry time (a wait, never a lease) or -> DEAD with a reason."""

from __future__ import annotations

from backends.support import claim, claim_one, enqueue, fail, new_task, row
from conveyor.backends.base import Backend, Fail, Failure, NextDueAt, QueueStatsRead


def test_fail_with_retry_schedules_the_next_attempt(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    clock.advance(1.0)
    assert fail(backend, claimed, 15.0, error="Traceback: ValueError: nope") == []
    stored = row(backend, task_id)
    assert stored.state == "FAILED"
    assert stored.scheduled_at == clock.now + 15.0
    assert stored.error == "Traceback: ValueError: nope"
    assert stored.attempts == 1
    assert stored.dead_reason is None
    assert stored.completed_at is None
    assert backend.execute(NextDueAt(["default"])) == clock.now + 15.0


def test_failed_task_is_claimable_only_once_its_retry_is_due(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    fail(backend, claim_one(backend), 15.0)
    assert claim(backend) == []
    clock.advance(14.9)
    assert claim(backend) == []
    clock.advance(0.1)
    again = claim_one(backend)
    assert again.id == task_id
    assert again.attempts == 2


def test_retry_zero_is_due_at_once(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task())
    fail(backend, claim_one(backend), 0.0)
    assert claim_one(backend).id == task_id


def test_fail_without_retry_dead_letters_with_reason_and_error(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    clock.advance(3.0)
    assert fail(backend, claimed, None, error="KeyError: 'x'", reason="not_retryable") == []
    stored = row(backend, task_id)
    assert stored.state == "DEAD"
    assert stored.dead_reason == "not_retryable"
    assert stored.error == "KeyError: 'x'"
    assert stored.completed_at == clock.now
    assert backend.execute(NextDueAt(["default"])) is None
    clock.advance(10_000.0)
    assert claim(backend) == []


def test_fail_counts_a_lost_worker_apart(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task())
    fail(backend, claim_one(backend), 0.0, worker_lost=True)
    assert row(backend, task_id).worker_lost == 1
    fail(backend, claim_one(backend), 0.0)
    stored = row(backend, task_id)
    assert (stored.worker_lost, stored.attempts) == (1, 2)


def test_a_failed_tokens_second_use_is_lost(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    fail(backend, claimed, 10.0)
    assert fail(backend, claimed, None, reason="x") == [task_id]
    assert row(backend, task_id).state == "FAILED"


def test_retries_until_dead_keep_the_last_error(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(max_retries=2))
    for attempt in (1, 2):
        claimed = claim_one(backend)
        assert claimed.attempts == attempt
        fail(backend, claimed, 1.0, error=f"error {attempt}")
        clock.advance(1.0)
    last = claim_one(backend)
    assert last.attempts == 3
    fail(backend, last, None, error="error 3", reason="max_retries")
    stored = row(backend, task_id)
    assert (stored.state, stored.dead_reason, stored.error) == ("DEAD", "max_retries", "error 3")


def test_fail_in_a_batch(backend: Backend) -> None:
    ids = enqueue(backend, new_task(), new_task())
    claimed = {c.id: c for c in claim(backend, limit=2)}
    failures = [
        Failure(ids[0], claimed[ids[0]].lease_token, "a", 5.0),
        Failure(ids[1], claimed[ids[1]].lease_token, "b", None, "not_retryable"),
    ]
    assert backend.execute(Fail(failures)) == []
    assert [row(backend, i).state for i in ids] == ["FAILED", "DEAD"]


def test_failed_and_dead_show_in_stats(backend: Backend) -> None:
    enqueue(backend, new_task("q"), new_task("q"))
    first, second = claim(backend, ["q"], limit=2)
    fail(backend, first, 60.0)
    fail(backend, second, None, reason="not_retryable")
    [counts] = backend.execute(QueueStatsRead())
    assert counts.counts == {"FAILED": 1, "DEAD": 1}
