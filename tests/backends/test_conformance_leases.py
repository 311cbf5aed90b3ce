"""Leases and fencing: every transition after a claim carries the lease token, a stale token
changes nothing and is reported lost, and an expired lease returns the task to the queue."""

from __future__ import annotations

from backends.support import LEASE, claim, claim_one, complete, enqueue, fail, new_task, row
from conveyor.backends.base import (
    Backend,
    Complete,
    Completion,
    Extend,
    Fail,
    Failure,
    Lease,
    Recovered,
    RecoverExpired,
    Release,
)


def _forged(token: str) -> str:
    return "0" * len(token) if token != "0" * len(token) else "1" * len(token)


def test_complete_marks_done_with_result(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    clock.advance(2.0)
    assert complete(backend, claimed, b"\x01result") == []
    stored = row(backend, task_id)
    assert stored.state == "DONE"
    assert stored.result == b"\x01result"
    assert stored.completed_at == clock.now
    assert stored.attempts == 1


def test_the_reported_start_replaces_the_lease_start_within_bounds(
    backend: Backend, clock
) -> None:
    """A task that waited in a prefetch buffer started after its lease did: the worker reports
    when, and the stored start moves there, never before the lease nor after now."""
    ids = enqueue(backend, *(new_task() for _ in range(5)))
    claimed = {t.id: t for t in claim(backend, limit=5)}
    leased_at = clock.now
    clock.advance(10.0)
    done = [Completion(ids[0], claimed[ids[0]].lease_token, None, started_at=leased_at + 4.0),
            Completion(ids[1], claimed[ids[1]].lease_token, None, started_at=leased_at - 60),
            Completion(ids[2], claimed[ids[2]].lease_token, None, started_at=leased_at + 60),
            Completion(ids[3], claimed[ids[3]].lease_token, None)]
    assert backend.execute(Complete(done)) == []
    assert backend.execute(Fail([Failure(ids[4], claimed[ids[4]].lease_token, "boom", 5.0,
                                         started_at=leased_at + 7.0)])) == []
    starts = [row(backend, i).started_at for i in ids]
    assert starts == [leased_at + 4.0, leased_at, clock.now, leased_at, leased_at + 7.0]


def test_complete_without_result(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task())
    assert complete(backend, claim_one(backend)) == []
    assert row(backend, task_id).result is None


def test_complete_twice_reports_the_second_lost(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    complete(backend, claimed, b"first")
    done_at = clock.now
    clock.advance(1.0)
    assert complete(backend, claimed, b"second") == [task_id]
    stored = row(backend, task_id)
    assert (stored.result, stored.completed_at) == (b"first", done_at)


def test_stale_token_changes_nothing(backend: Backend) -> None:
    """complete / fail / extend / release with a wrong token: reported lost, row untouched."""
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    before = row(backend, task_id)
    forged = _forged(claimed.lease_token)
    assert backend.execute(Complete([Completion(task_id, forged, b"x")])) == [task_id]
    assert backend.execute(Fail([Failure(task_id, forged, "e", 1.0)])) == [task_id]
    assert backend.execute(Fail([Failure(task_id, forged, "e", None, "x")])) == [task_id]
    assert backend.execute(Extend("worker-1", [Lease(task_id, forged)], 999.0)) == [task_id]
    assert backend.execute(Release([Lease(task_id, forged)])) == [task_id]
    assert row(backend, task_id) == before


def test_transitions_on_unknown_ids_report_them_lost(backend: Backend) -> None:
    assert backend.execute(Complete([Completion("nope", "t", None)])) == ["nope"]
    assert backend.execute(Fail([Failure("nope", "t", "e", None, "x")])) == ["nope"]
    assert backend.execute(Extend("w", [Lease("nope", "t")], 10.0)) == ["nope"]
    assert backend.execute(Release([Lease("nope", "t")])) == ["nope"]


def test_batches_apply_the_good_and_report_the_stale(backend: Backend) -> None:
    ids = enqueue(backend, new_task(), new_task(), new_task())
    claimed = sorted(claim(backend, limit=3), key=lambda c: ids.index(c.id))
    completions = [
        Completion(claimed[0].id, claimed[0].lease_token, b"0"),
        Completion(claimed[1].id, _forged(claimed[1].lease_token), b"1"),
        Completion(claimed[2].id, claimed[2].lease_token, b"2"),
    ]
    assert backend.execute(Complete(completions)) == [ids[1]]
    assert [row(backend, i).state for i in ids] == ["DONE", "RUNNING", "DONE"]


def test_extend_pushes_the_deadline_from_now(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend, lease=LEASE)
    clock.advance(LEASE - 1.0)
    assert backend.execute(Extend("worker-1", [Lease(task_id, claimed.lease_token)], LEASE)) == []
    clock.advance(LEASE - 1.0)  # past the first deadline, inside the extended one
    assert backend.execute(RecoverExpired(max_worker_lost=3)) == Recovered(0, 0)
    assert row(backend, task_id).state == "RUNNING"
    assert complete(backend, claimed) == []


def test_release_takes_the_attempt_back(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    assert backend.execute(Release([Lease(task_id, claimed.lease_token)])) == []
    stored = row(backend, task_id)
    assert stored.state == "PENDING"
    assert stored.attempts == 0
    assert stored.worker_id is None
    assert stored.started_at is None
    again = claim_one(backend, worker="worker-2")
    assert again.id == task_id
    assert again.attempts == 1
    assert again.lease_token != claimed.lease_token


def test_released_token_is_stale(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task())
    claimed = claim_one(backend)
    backend.execute(Release([Lease(task_id, claimed.lease_token)]))
    assert complete(backend, claimed) == [task_id]
    assert row(backend, task_id).state == "PENDING"


def test_release_keeps_priority_order(backend: Backend) -> None:
    [low, high] = enqueue(backend, new_task(priority=1), new_task(priority=8))
    claimed = claim(backend, limit=2)
    backend.execute(Release([Lease(c.id, c.lease_token) for c in claimed]))
    assert [claim_one(backend).id for _ in range(2)] == [high, low]


def test_expired_lease_is_recovered_to_pending(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    claim_one(backend, lease=10.0)
    clock.advance(10.0)
    assert backend.execute(RecoverExpired(max_worker_lost=3)) == Recovered(0, 0)
    clock.advance(0.001)
    assert backend.execute(RecoverExpired(max_worker_lost=3)) == Recovered(requeued=1, dead=0)
    stored = row(backend, task_id)
    assert stored.state == "PENDING"
    assert stored.attempts == 1
    assert stored.worker_lost == 1
    assert stored.error
    again = claim_one(backend, worker="worker-2")
    assert again.attempts == 2
    assert again.worker_lost == 1


def test_old_token_cannot_act_after_recovery(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task())
    first = claim_one(backend, lease=10.0)
    clock.advance(11.0)
    backend.execute(RecoverExpired(max_worker_lost=3))
    assert complete(backend, first) == [task_id]
    second = claim_one(backend, worker="worker-2", lease=10.0)
    assert second.lease_token != first.lease_token
    assert complete(backend, first) == [task_id]
    assert fail(backend, first, None, reason="x") == [task_id]
    assert backend.execute(Extend("worker-1", [Lease(task_id, first.lease_token)], 99.0)) == [
        task_id
    ]
    assert backend.execute(Release([Lease(task_id, first.lease_token)])) == [task_id]
    assert row(backend, task_id).state == "RUNNING"
    assert complete(backend, second, b"ok") == []
    assert row(backend, task_id).state == "DONE"


def test_worker_lost_too_often_goes_dead(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(max_retries=100))
    outcomes = []
    for _ in range(3):
        claim_one(backend, lease=5.0)
        clock.advance(6.0)
        outcomes.append(backend.execute(RecoverExpired(max_worker_lost=3)))
    assert outcomes == [Recovered(1, 0), Recovered(1, 0), Recovered(0, 1)]
    stored = row(backend, task_id)
    assert stored.state == "DEAD"
    assert stored.dead_reason == "worker_lost"
    assert stored.worker_lost == 3
    assert stored.attempts == 3
    assert stored.completed_at == clock.now
    assert claim(backend) == []


def test_recover_expired_honours_its_limit(backend: Backend, clock) -> None:
    enqueue(backend, *[new_task() for _ in range(5)])
    claim(backend, limit=5, lease=1.0)
    clock.advance(2.0)
    assert backend.execute(RecoverExpired(max_worker_lost=3, limit=2)) == Recovered(2, 0)
    assert backend.execute(RecoverExpired(max_worker_lost=3, limit=10)) == Recovered(3, 0)
    assert backend.execute(RecoverExpired(max_worker_lost=3)) == Recovered(0, 0)


def test_recover_leaves_live_leases_alone(backend: Backend, clock) -> None:
    [short, long] = enqueue(backend, new_task("a"), new_task("b"))
    claim_one(backend, ["a"], lease=5.0)
    claim_one(backend, ["b"], lease=50.0)
    clock.advance(10.0)
    assert backend.execute(RecoverExpired(max_worker_lost=3)) == Recovered(1, 0)
    assert (row(backend, short).state, row(backend, long).state) == ("PENDING", "RUNNING")
