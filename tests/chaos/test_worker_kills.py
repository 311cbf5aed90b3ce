"""Worker kills: SIGKILL a random worker process every 2 s under load and restart it.

Full size (CONVEYOR_CHAOS_SCALE=1): 50,000 tasks, 4 workers x 8 slots, 60 s of kills. Every task
must end DONE exactly once in the backend and leave its effect at least once; duplicates are
bounded by what the killed workers held (measured: each victim is SIGSTOPped, its leases are
read, then it is SIGKILLed), and every orphan is recovered within lease + recovery interval + 1 s.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from chaos.harness import Deadline, Workers, effect_counts, percentile, report, scaled
from conveyor import Conveyor, TaskState
from helpers import wait_until

pytestmark = pytest.mark.slow
LEASE = 3.0
RECOVERY = LEASE / 2  # the worker's default recovery interval
PROCESSES, SLOTS = 4, 8


@dataclass
class Kill:
    pid: int
    at: float
    held: set[str]
    recovered_after: dict[str, float] = field(default_factory=dict)


def running_by_pid(app: Conveyor) -> dict[str, int]:
    """Task id -> pid of the worker holding its lease, for every RUNNING task."""
    held = {}
    for info in app.list_tasks(state=TaskState.RUNNING, limit=10_000):
        if info.worker_id:
            held[info.id] = int(info.worker_id.split(":")[1])
    return held


class OrphanWatch:
    """Measures, for each kill, when each held lease stopped being held by the dead worker."""

    def __init__(self, url: str) -> None:
        self.app = Conveyor(url)
        self.kills: list[Kill] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OrphanWatch:
        self._thread.start()
        return self

    def add(self, kill: Kill) -> None:
        with self._lock:
            self.kills.append(kill)

    def pending(self) -> int:
        with self._lock:
            return sum(len(k.held) - len(k.recovered_after) for k in self.kills)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            held = running_by_pid(self.app)
            now = time.monotonic()
            with self._lock:
                for kill in self.kills:
                    for task_id in kill.held - kill.recovered_after.keys():
                        if held.get(task_id) != kill.pid:
                            kill.recovered_after[task_id] = now - kill.at

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.app.close()


def test_sigkill_a_worker_every_2s_nothing_lost(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    total = scaled(50_000, 2_000)
    kill_seconds = scaled(60, 12)
    # Each task works long enough for the backlog to outlast the kills (~38 ms at full size).
    work = PROCESSES * SLOTS * kill_seconds / total * 1.2
    handles = []
    for start in range(0, total, 1000):
        handles += chaos.effect.enqueue_many(
            [((f"t{n}", work), {}) for n in range(start, min(total, start + 1000))])
    ids = {h.id for h in handles}
    group = workers(url, lease=LEASE, concurrency=SLOTS).start(PROCESSES)
    watch = OrphanWatch(url).start()
    rng = random.Random(20261124)
    began = time.monotonic()
    try:
        faults = Deadline(kill_seconds)
        while faults:
            time.sleep(2.0)  # the fault's cadence, not a wait for a result
            victim = rng.randrange(PROCESSES)
            pid = group.processes[victim].pid
            group.signal(victim, signal.SIGSTOP)  # frozen: what it holds now is what it loses
            held = {t for t, p in running_by_pid(app).items() if p == pid}
            group.kill(victim)
            watch.add(Kill(pid, time.monotonic(), held))
            group.replace(victim)
        wait_until(lambda: app.stats().queues["chaos"].counts.get("DONE", 0) == total,
                   timeout=60 + total / 50, interval=0.5,
                   message=f"not every task DONE: {app.stats().queues['chaos'].counts}")
        elapsed = time.monotonic() - began
        wait_until(lambda: watch.pending() == 0, timeout=30, message="orphans still held")
    finally:
        watch.close()
    assert group.crashed() == [], "no worker died except those the test killed"
    codes = group.terminate_all()
    counts = effect_counts(group.effects)
    lost = ids - counts.keys()
    duplicates = sum(n - 1 for n in counts.values())
    held_at_kills = sum(len(k.held) for k in watch.kills)
    delays = [d for k in watch.kills for d in k.recovered_after.values()]
    report("worker_kills", backend, tasks=total, processes=PROCESSES, slots=SLOTS,
           kill_seconds=kill_seconds, kills=len(watch.kills), lost=len(lost),
           done=app.stats().queues["chaos"].counts.get("DONE", 0), duplicates=duplicates,
           held_at_kills=held_at_kills, orphan_recovery_p50_s=round(percentile(delays, 0.5), 3),
           orphan_recovery_max_s=round(max(delays, default=0.0), 3),
           bound_s=LEASE + RECOVERY + 1.0, lease_s=LEASE, task_ms=round(work * 1000, 1),
           elapsed_s=round(elapsed, 1))
    assert codes == [0] * PROCESSES, "the surviving workers stop cleanly"
    assert lost == set(), f"{len(lost)} tasks never ran"
    assert counts.keys() == ids
    assert duplicates <= held_at_kills, "only tasks the killed workers held may run twice"
    assert len(watch.kills) >= kill_seconds // 2 - 1
    assert max(delays, default=0.0) <= LEASE + RECOVERY + 1.0, "orphans recovered in time"
