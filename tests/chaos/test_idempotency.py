"""Idempotency under crashes, and a crash loop.

Every key is enqueued twice at once by two producers, while workers run; a share of the first
attempts kill their process after the side effect and before the acknowledgement. One task per
key; effects recorded through the idempotency ledger (or, on PostgreSQL, in the transaction that
marks the task DONE) appear exactly once per key, although the runs are more.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from chaos.harness import Workers, effect_counts, effect_lines, report, scaled
from conveyor import Conveyor, TaskState
from helpers import wait_until

pytestmark = pytest.mark.slow
CRASH_PERCENT = 10


def enqueue_twice_at_once(url: str, name: str, keys: list[str]) -> list[set[str]]:
    """Two producers, each with its own connection, enqueue every key; returns their ids."""
    from apps import chaos

    seen: list[set[str]] = [set(), set()]
    errors: list[BaseException] = []

    def produce(index: int) -> None:
        producer = Conveyor(url)
        producer.tasks.update(chaos.app.tasks)
        try:
            for key in keys if index == 0 else reversed(keys):
                seen[index].add(producer.enqueue(name, (key, CRASH_PERCENT),
                                                 idempotency_key=key).id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            producer.close()

    threads = [threading.Thread(target=produce, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors, errors
    return seen


def _done(app: Conveyor) -> int:
    return (app.stats().queues.get("chaos") and app.stats().queues["chaos"].counts.get("DONE", 0)) \
        or 0


def crashed_keys(effects: Path) -> set[str]:
    """The keys whose first attempt ran and was chosen to crash. A key whose first attempt
    never ran (its lease lapsed in the prefetch buffer on a loaded machine) runs once, whole."""
    from apps import chaos

    return {f[2] for f in effect_lines(effects, "run")
            if f[4] == "1" and chaos.crashes_first_time(f[2], CRASH_PERCENT)}


def runs_of_key(effects: Path) -> Counter[str]:
    return Counter(f[2] for f in effect_lines(effects, "run"))


def test_keys_enqueued_twice_with_crashes_take_effect_once(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    total = scaled(10_000, 1_000)
    keys = [f"key-{n}" for n in range(total)]
    group = workers(url, lease=3.0, concurrency=4).start(2)
    first, second = enqueue_twice_at_once(url, chaos.keyed_effect.name, keys)
    wait_until(lambda: _done(app) == total, timeout=120 + total / 20, interval=0.5,
               message="not every key's task finished")
    codes = group.terminate_all()
    runs = effect_counts(group.effects, "run")
    effects = effect_counts(group.effects)
    crashed = crashed_keys(group.effects)
    report("idempotency_crashes", backend, keys=total, enqueues=2 * total,
           crash_percent=CRASH_PERCENT, crashed_first_attempts=len(crashed),
           tasks=len(first | second), runs=sum(runs.values()), effects=sum(effects.values()),
           recorded_through="ledger")
    assert first == second, "both producers got the same task for every key"
    assert len(first) == total
    assert app.stats().queues["chaos"].counts == {"DONE": total}
    assert crashed, "some first attempts crashed"
    assert all(runs_of_key(group.effects)[k] >= 2 for k in crashed), "crashed attempts ran again"
    assert effects == dict.fromkeys(keys, 1), "exactly one effect per key"
    assert codes == [0, 0], "a task's crash takes its pool process, never the worker"


@pytest.mark.parametrize("backend", ["postgres"])
def test_transactional_completion_with_crashes_takes_effect_once(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers], tmp_path: Path
) -> None:
    from apps import chaos

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE chaos_effects (key text, task_id text, pid int)")
    total = scaled(10_000, 500)
    keys = [f"key-{n}" for n in range(total)]
    group = workers(url, lease=2.0, concurrency=4).start(3)
    restarts = 0

    def done_restarting_the_dead() -> bool:
        nonlocal restarts
        restarts += group.respawn_dead()  # what the supervisor does, in the test's hands
        return _done(app) == total

    first, second = enqueue_twice_at_once(url, chaos.transactional_effect.name, keys)
    wait_until(done_restarting_the_dead, timeout=120 + total / 10, interval=0.2,
               message="not every key's task finished")
    group.terminate_all()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT key, count(*) FROM chaos_effects GROUP BY key").fetchall()
    runs = effect_counts(group.effects, "run")
    crashed = crashed_keys(group.effects)
    report("idempotency_crashes", backend, keys=total, enqueues=2 * total,
           crash_percent=CRASH_PERCENT, crashed_first_attempts=len(crashed),
           worker_restarts=restarts,
           tasks=len(first | second), runs=sum(runs.values()),
           effects=sum(n for _, n in rows), recorded_through="transactional completion")
    assert first == second and len(first) == total
    assert app.stats().queues["chaos"].counts == {"DONE": total}
    assert restarts > 0, "the crashes took their workers down"
    assert crashed, "some first attempts crashed"
    assert all(runs_of_key(group.effects)[k] >= 2 for k in crashed), "crashed attempts ran again"
    assert dict(rows) == dict.fromkeys(keys, 1), "exactly one committed effect per key"


@pytest.mark.parametrize("lane", ["process", "thread"])
def test_a_task_that_kills_its_worker_goes_dead_as_worker_lost(
    backend: str, lane: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    max_lost = 3
    task = chaos.kill_my_worker if lane == "thread" else chaos.kill_my_pool_process
    killer = task.enqueue()
    others = chaos.effect.enqueue_many([((f"o{n}", 0.0), {}) for n in range(200)])
    group = workers(url, lease=1.5, concurrency=4,
                    env={"CONVEYOR_MAX_WORKER_LOST": str(max_lost)}).start(2)
    restarts = 0

    def settled() -> bool:
        nonlocal restarts
        restarts += group.respawn_dead()
        counts = app.stats().queues["chaos"].counts
        return killer.info().state == TaskState.DEAD and (
            counts.get("DONE", 0) + counts.get("DEAD", 0) == len(others) + 1)

    wait_until(settled, timeout=90, interval=0.2, message="the crash loop did not settle")
    info = killer.info()
    runs = effect_counts(group.effects, "run")
    report("crash_loop", backend, lane=lane, max_worker_lost=max_lost, runs=runs[killer.id],
           worker_restarts=restarts, state=str(info.state), reason=info.dead_reason,
           other_tasks_done=sum(app.get(h.id).state == TaskState.DONE for h in others),
           other_tasks=len(others))
    codes = group.terminate_all()
    assert info.dead_reason == "worker_lost"
    assert runs[killer.id] == max_lost, "tried max_worker_lost times, then DEAD"
    assert info.worker_lost == max_lost
    # A thread-lane killer ends its worker on all but its last attempt, which is quarantined in
    # a pool process, so the innocent tasks claimed beside it finish.
    assert restarts == (max_lost - 1 if lane == "thread" else 0), "only a thread task ends a worker"
    assert codes == [0, 0]
    assert set(effect_counts(group.effects)) == {h.id for h in others}
    assert all(app.get(h.id).state == TaskState.DONE for h in others), "the innocent finish"
