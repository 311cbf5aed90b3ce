"""Queue partitions (``declare_queue(name, partitions=N)``): one logical queue to every reader.

Redis spreads a partitioned queue over N tags (slots, and so shards on a cluster); SQLite and
PostgreSQL accept the declaration and ignore it. Either way every transition and read must
behave as for one queue: claims drain all partitions, ids are found without a hint, keys dedupe,
stats and lists name the queue, not a partition.
"""

from __future__ import annotations

from backends.support import claim, enqueue, new_task, row
from conveyor import Conveyor
from conveyor.backends.base import (
    Backend,
    Cancel,
    Complete,
    Completion,
    Enqueue,
    Extend,
    Fail,
    Failure,
    GetTasks,
    Lease,
    ListTasks,
    NextDueAt,
    Purge,
    QueueStatsRead,
    Release,
    Requeue,
)


def _drain(backend: Backend, queues: list[str], limit: int) -> list[str]:
    claimed: list[str] = []
    while batch := claim(backend, queues, limit):
        assert {t.queue for t in batch} <= set(queues)
        claimed += [t.id for t in batch]
    return claimed


def test_one_claimer_drains_every_partition(backend: Backend) -> None:
    backend.declare_queue("hot", 4)
    ids = enqueue(backend, *[new_task("hot") for _ in range(20)])
    [stats] = backend.execute(QueueStatsRead())
    assert (stats.queue, stats.counts) == ("hot", {"PENDING": 20})
    claimed = _drain(backend, ["hot"], 3)
    assert sorted(claimed) == sorted(ids)
    [stats] = backend.execute(QueueStatsRead())
    assert stats.counts == {"RUNNING": 20}


def test_lease_transitions_on_partitions(backend: Backend) -> None:
    backend.declare_queue("hot", 4)
    enqueue(backend, *[new_task("hot") for _ in range(8)])
    got = claim(backend, ["hot"], 8)
    assert len(got) == 8
    hinted = [Completion(t.id, t.lease_token, b"ok", queue=t.queue) for t in got[:2]]
    bare = [Completion(t.id, t.lease_token, None) for t in got[2:4]]
    stale = Completion(got[4].id, "not-the-token", None, queue="hot")
    assert backend.execute(Complete([*hinted, *bare, stale])) == [got[4].id]
    leases = [Lease(t.id, t.lease_token, queue=t.queue if i % 2 else None)
              for i, t in enumerate(got[4:6])]
    assert backend.execute(Extend("worker-1", leases, 60.0)) == []
    assert backend.execute(Release(leases)) == []
    failures = [Failure(t.id, t.lease_token, "boom", None, "max_retries",
                        queue=t.queue if i % 2 else None) for i, t in enumerate(got[6:])]
    assert backend.execute(Fail(failures)) == []
    states = {t.id: row(backend, t.id).state for t in got}
    assert [states[t.id] for t in got] == ["DONE"] * 4 + ["PENDING"] * 2 + ["DEAD"] * 2
    assert all(r.queue == "hot" for r in backend.execute(ListTasks(queue="hot")))
    dead = backend.execute(ListTasks(state="DEAD"))
    assert sorted(r.id for r in dead) == sorted(t.id for t in got[6:])
    assert {r.queue for r in dead} == {"hot"}
    assert backend.execute(Requeue([got[6].id])) == [got[6].id]
    assert backend.execute(Purge("hot", "DEAD")) == 1
    assert backend.execute(GetTasks([got[7].id])) == []


def test_ids_are_found_without_a_hint(backend: Backend) -> None:
    backend.declare_queue("hot", 4)
    ids = enqueue(backend, *[new_task("hot") for _ in range(8)])
    assert [r.id for r in backend.execute(GetTasks(ids))] == ids
    assert backend.execute(Cancel(ids[:5])) == ids[:5]
    assert backend.execute(Requeue(ids[2:5])) == ids[2:5]
    assert [row(backend, i).state for i in ids] == ["CANCELLED"] * 2 + ["PENDING"] * 6


def test_idempotency_keys_dedupe_across_partitions(backend: Backend) -> None:
    backend.declare_queue("hot", 8)
    first = backend.execute(Enqueue([new_task("hot", key=f"k{i}") for i in range(12)]))
    again = backend.execute(Enqueue([new_task("hot", key=f"k{i}") for i in range(12)]))
    assert all(o.created for o in first) and not any(o.created for o in again)
    assert [o.id for o in again] == [o.id for o in first]
    assert len(backend.execute(ListTasks(queue="hot"))) == 12


def test_an_urgent_task_is_claimed_within_one_rotation(backend: Backend) -> None:
    """Priority holds within a partition; a claim starts from the next partition each time,
    so an urgent task behind a backlog elsewhere waits at most one claim per partition."""
    backend.declare_queue("hot", 4)
    enqueue(backend, *[new_task("hot", 1) for _ in range(40)])
    [urgent] = enqueue(backend, new_task("hot", 9))
    firsts = [claim(backend, ["hot"], 1)[0] for _ in range(4)]
    assert urgent in [t.id for t in firsts]


def test_delayed_tasks_in_partitions(backend: Backend, clock) -> None:  # type: ignore[no-untyped-def]
    backend.declare_queue("hot", 4)
    ids = enqueue(backend, *[new_task("hot", delay=10.0 + i) for i in range(6)])
    assert backend.execute(NextDueAt(["hot"])) == clock.now + 10.0
    clock.advance(20.0)
    assert sorted(_drain(backend, ["hot"], 2)) == sorted(ids)


def test_the_partition_count_reaches_clients_that_did_not_declare(
    backend: Backend, other_backend: Backend
) -> None:
    backend.declare_queue("hot", 4)
    ids = enqueue(backend, *[new_task("hot") for _ in range(12)])
    assert sorted(_drain(other_backend, ["hot"], 5)) == sorted(ids)


def test_declare_queue_through_the_app(app: Conveyor) -> None:
    app.declare_queue("hot", partitions=4)

    @app.task(queue="hot")
    def work(n: int) -> int:
        return n * 2

    handles = work.enqueue_many([((n,), {}) for n in range(10)])
    assert app.stats().total("PENDING") == 10
    app.run_until_idle()
    assert sorted(h.result(timeout=5.0) for h in handles) == [n * 2 for n in range(10)]


def test_a_queue_hint_never_hides_a_task(backend: Backend) -> None:
    backend.declare_queue("hot", 4)
    hot = enqueue(backend, *[new_task("hot") for _ in range(4)])
    [cold] = enqueue(backend, new_task("cold"))
    assert [r.id for r in backend.execute(GetTasks([*hot, cold], queue="hot"))] == [*hot, cold]
    assert [r.id for r in backend.execute(GetTasks([cold], queue="missing"))] == [cold]
    assert backend.execute(GetTasks(["00000000-0000-7000-8000-000000000000"], queue="hot")) == []


def test_a_client_that_did_not_declare_can_extend_and_complete(
    backend: Backend, other_backend: Backend
) -> None:
    """Like the worker's lease keeper, a separate process that never declared the queue."""
    backend.declare_queue("hot", 4)
    enqueue(backend, *[new_task("hot") for _ in range(8)])
    got = claim(backend, ["hot"], 8)
    leases = [Lease(t.id, t.lease_token, queue=t.queue) for t in got]
    assert other_backend.execute(Extend("worker-1", leases, 60.0)) == []
    done = [Completion(t.id, t.lease_token, None, queue=t.queue) for t in got]
    assert other_backend.execute(Complete(done)) == []
    assert {row(backend, t.id).state for t in got} == {"DONE"}
