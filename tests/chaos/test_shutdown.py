"""Graceful shutdown and rolling restart: SIGTERM every worker in turn under load.

A warm stop finishes what runs and hands back what was prefetched without counting an attempt,
so after a full rolling restart every task is DONE after exactly one attempt, and ran once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from chaos.harness import Workers, all_tasks, effect_counts, report, scaled
from conveyor import Conveyor
from helpers import wait_until

pytestmark = pytest.mark.slow
PROCESSES = 4


def test_rolling_restart_under_load_loses_nothing_and_counts_no_attempt(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    total = scaled(20_000, 2_000)
    handles = []
    for start in range(0, total, 1000):
        handles += chaos.effect.enqueue_many(
            [((f"r{n}", 0.05), {}) for n in range(start, min(total, start + 1000))])
    group = workers(url, lease=5.0, args=("--grace", "30")).start(PROCESSES).wait_ready()
    began = time.monotonic()
    codes, released_logged = [], 0
    for index in range(PROCESSES):
        wait_until(lambda: app.stats().busy_slots > 0, timeout=30, message="no load")
        process = group.processes[index]
        process.terminate()
        codes.append(process.wait(60))
        log = group.log_of[process.pid].read_text()
        released_logged += sum(int(line.split("released ")[1].split()[0])
                               for line in log.splitlines() if "prefetched task(s)" in line
                               and "released " in line)
        group.replace(index)
        group.wait_ready()
    wait_until(lambda: app.stats().queues["chaos"].counts.get("DONE", 0) == total,
               timeout=60 + total / 30, interval=0.5, message="not every task finished")
    elapsed = time.monotonic() - began
    codes += group.terminate_all()
    done = all_tasks(app, "DONE")
    counts = effect_counts(group.effects)
    report("rolling_restart", backend, tasks=total, processes=PROCESSES, restarts=PROCESSES,
           released_prefetched=released_logged, lost=total - len(counts),
           duplicates=sum(n - 1 for n in counts.values()),
           extra_attempts=sum(t.attempts - 1 for t in done), elapsed_s=round(elapsed, 1))
    assert codes == [0] * (2 * PROCESSES), "every warm stop is clean"
    assert set(counts) == {h.id for h in handles}, "0 lost"
    assert all(n == 1 for n in counts.values()), "nothing ran twice"
    assert len(done) == total and all(t.attempts == 1 for t in done), \
        "0 attempts counted for released tasks"
    assert released_logged > 0, "the stops did hand prefetched tasks back"
