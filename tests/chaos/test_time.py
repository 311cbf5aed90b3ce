"""Time: delays longer than the lease, and workers with wrong clocks.

Delayed tasks sit in the schedule, not in a lease, so a delay many times the lease never
produces a duplicate or an early start. Lease deadlines are computed from the backend's clock
(Redis ``TIME``, PostgreSQL ``now()``), so workers whose own clocks run 30 s ahead, 30 s behind
or jump 120 s forward neither steal nor lose leases. (SQLite's clock is its host's, shared by
every process on it: a skew between its workers cannot happen; docs/RELIABILITY.md says what a
host clock step does there.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chaos.harness import (
    TESTS_DIR,
    Workers,
    all_tasks,
    effect_counts,
    effect_lines,
    percentile,
    report,
    scaled,
)
from conveyor import Conveyor, TaskState
from helpers import wait_until

pytestmark = pytest.mark.slow
SKEW_PATH = Path(__file__).parent / "skew"


def test_delays_longer_than_the_lease_never_run_early_or_twice(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    lease, total, horizon = 5.0, scaled(2_000, 200), scaled(60, 20)
    group = workers(url, lease=lease, concurrency=8).start(2).wait_ready()
    start = time.time()
    dues = [start + 10 * horizon / 60 + (horizon - 10 * horizon / 60) * n / total
            for n in range(total)]
    handles, acked = [], {}
    for d in dues:
        handles.append(chaos.due_at.options(eta=datetime.fromtimestamp(d, UTC)).enqueue(d))
        acked[handles[-1].id] = time.time()
    wait_until(lambda: app.stats().queues["chaos"].counts.get("DONE", 0) == total,
               timeout=horizon + 60, interval=0.5, message="not every delayed task ran")
    group.terminate_all()
    lines = effect_lines(group.effects)
    # Lateness from the due time, or from the enqueue's acknowledgement when a loaded machine
    # took longer than that to enqueue it (a task cannot start before it exists).
    late = [float(f[4]) - max(float(f[2]), acked[f[1]]) for f in lines]
    early = sum(1 for f in lines if float(f[4]) < float(f[2]) - 0.001)
    counts = effect_counts(group.effects)
    report("delays", backend, tasks=total, due_in_s=f"{10 * horizon / 60:.0f}-{horizon}",
           lease_s=lease, duplicates=sum(n - 1 for n in counts.values()), early_starts=early,
           lateness_p50_ms=round(percentile(late, 0.5) * 1000, 1),
           lateness_p99_ms=round(percentile(late, 0.99) * 1000, 1),
           lateness_max_ms=round(max(late) * 1000, 1))
    assert set(counts) == {h.id for h in handles}
    assert all(n == 1 for n in counts.values()), "0 duplicates"
    assert early == 0, "0 early starts"


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_skewed_worker_clocks_neither_steal_nor_lose_leases(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    lease = 2.0
    handles = chaos.effect.enqueue_many([((f"k{n}", 2.5 * lease), {}) for n in range(36)])
    handles += chaos.effect.enqueue_many([((f"q{n}", 0.02), {}) for n in range(600)])
    path = f"{SKEW_PATH}:{TESTS_DIR}"
    clocks = [{"CONVEYOR_CLOCK_SKEW": "30"}, {"CONVEYOR_CLOCK_SKEW": "-30"},
              {"CONVEYOR_CLOCK_JUMP": "120", "CONVEYOR_CLOCK_JUMP_AFTER": "4"}]
    groups = [workers(url, lease=lease, concurrency=6, args=("--prefetch", "0"),
                      env={"PYTHONPATH": path, **clock}) for clock in clocks]
    for group in groups:
        group.start(1)
    wait_until(lambda: app.stats().queues["chaos"].counts.get("DONE", 0) == len(handles),
               timeout=120, interval=0.5, message="the tasks did not finish")
    for group in groups:
        assert group.terminate_all() == [0]
    done = all_tasks(app, TaskState.DONE)
    logs = "\n".join(g.logs() for g in groups)
    ran = effect_counts(groups[0].effects)  # one directory: the groups share the effect log
    premature = sum(t.attempts - 1 for t in done)
    report("clock_skew", backend, worker_clocks="+30 s, -30 s, +120 s jump after 4 s",
           lease_s=lease, long_tasks=36, long_task_s=2.5 * lease, tasks=len(handles),
           premature_expiries=premature, worker_lost=sum(t.worker_lost for t in done),
           lease_lost_logged=logs.count("lease lost"),
           duplicates=sum(n - 1 for n in ran.values()))
    assert premature == 0 and all(t.worker_lost == 0 for t in done), "0 premature expiries"
    assert "lease lost" not in logs, "no worker lost or stole a lease"
    assert all(n == 1 for n in ran.values())
