"""Zombie workers and fencing; and the heartbeat's positive case.

A worker frozen (SIGSTOP of its process group: the worker, its lease keeper and its pool, as a
paused VM) while it holds 8 leases, for 3 x the lease: another worker takes the tasks over; when
the zombie wakes up, its 8 completions carry stale lease tokens and are rejected, and the effects,
recorded through a ledger keyed by task id, appear once each. The same when the worker alone
hangs (its lease keeper runs on): the keeper notices and stops extending.

Then the opposite: long tasks with a short lease, one of them holding the GIL in a C call for
longer than the lease, are never re-leased, because the heartbeat comes from outside the task's
reach.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from chaos.harness import Workers, effect_counts, effect_lines, report, scaled
from conveyor import Conveyor, TaskState
from helpers import wait_until

pytestmark = pytest.mark.slow


@dataclass
class Takeover:
    group: Workers
    frozen_pid: int
    rescuer: subprocess.Popen[bytes]
    ids: set[str]
    takeover_s: float

    def runners(self, task_id: str) -> set[str]:
        """The pids that started ``task_id``."""
        return {f[3] for f in effect_lines(self.group.effects, "start") if f[1] == task_id}


def holds_the_sqlite_write_lock(url: str) -> bool:
    """Whether some process holds the SQLite file's write lock now (always False elsewhere).

    A process frozen inside a write transaction stalls every writer of the file, the rescuer
    included, until it runs again: SQLite's one-writer design, documented in
    docs/architecture.md. A paused host takes all its processes with it, so that case cannot
    arise between hosts; the tests freeze the worker between transactions."""
    if not url.startswith("sqlite:///"):
        return False
    probe = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0.2, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def freeze_and_rescue(app: Conveyor, group: Workers, lease: float, freeze: Callable[[int], None],
                      thaw: Callable[[int], None], frozen_at_least: float = 0.0) -> Takeover:
    """One worker starts 8 tasks of ``lease`` seconds and is frozen; a second worker of the
    same group (sharing the effect log) takes them over; then the first is thawed, and its 8
    completions, now stale, are rejected."""
    from apps import chaos

    handles = chaos.fenced_effect.enqueue_many([((f"z{n}", lease), {}) for n in range(8)])
    ids = {h.id for h in handles}
    frozen_pid = group.start(1).processes[0].pid
    wait_until(lambda: len(effect_lines(group.effects, "start")) == 8, timeout=30,
               message="the first worker never started its 8 tasks")
    for _ in range(100):
        freeze(frozen_pid)
        if not holds_the_sqlite_write_lock(group.url):
            break
        thaw(frozen_pid)  # see holds_the_sqlite_write_lock
        time.sleep(0.01)
    else:
        raise AssertionError("could not freeze the worker outside a write transaction")
    frozen_at = time.monotonic()
    rescuer = group.spawn()
    group.processes.append(rescuer)
    try:
        wait_until(lambda: all(app.get(i).state == TaskState.DONE for i in ids), timeout=60,
                   message="the frozen worker's tasks were not taken over")
        takeover_s = time.monotonic() - frozen_at
        while time.monotonic() - frozen_at < frozen_at_least:
            time.sleep(0.05)  # the freeze lasts as long as specified
    finally:
        thaw(frozen_pid)
    log = group.log_of[frozen_pid]
    wait_until(lambda: log.read_text().count("lease lost for task") >= 8, timeout=30,
               message="the frozen worker's completions were not rejected")
    return Takeover(group, frozen_pid, rescuer, ids, takeover_s)


def test_a_zombie_worker_cannot_complete_what_was_taken_over(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    lease = 2.0
    group = workers(url, lease=lease, concurrency=8, args=("--prefetch", "0"))
    took = freeze_and_rescue(app, group, lease, lambda _: group.signal_group(0, signal.SIGSTOP),
                             lambda _: group.signal_group(0, signal.SIGCONT),
                             frozen_at_least=3 * lease)
    codes = group.terminate_all()
    rejected = group.log_of[took.frozen_pid].read_text().count("lease lost for task")
    starts = effect_counts(group.effects, "start")
    effects = effect_counts(group.effects)
    report("zombie_fencing", backend, leases_held=8, frozen_s=round(3 * lease, 1),
           takeover_s=round(took.takeover_s, 2), stale_completions_rejected=rejected,
           runs=sum(starts.values()), effects=sum(effects.values()))
    assert codes == [0, 0]
    assert rejected == 8, "exactly the zombie's 8 stale completions were rejected"
    # Under a loaded machine the rescuer may itself lose a lease and run a task again: more
    # starts are allowed (at-least-once); what must hold is one run on each side, one effect.
    assert all(took.runners(i) >= {str(took.frozen_pid), str(took.rescuer.pid)}
               for i in took.ids), "each task ran on both workers"
    assert effects == dict.fromkeys(took.ids, 1), "each side effect appears once"
    assert all(app.get(i).state == TaskState.DONE
               and str(took.rescuer.pid) in (app.get(i).worker_id or "")
               for i in took.ids), "the rescuing worker's completions stand"


def test_a_worker_hung_alone_loses_its_leases(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    """Only the worker stops (a deadlock outside the GIL looks the same): its lease keeper runs
    on, but without beats from the worker's loop and with no thread of it running, the keeper
    stops extending after one lease, so the tasks are recovered like a dead worker's."""
    lease = 2.0
    group = workers(url, lease=lease, concurrency=8, args=("--prefetch", "0"))
    took = freeze_and_rescue(app, group, lease, lambda pid: os.kill(pid, signal.SIGSTOP),
                             lambda pid: os.kill(pid, signal.SIGCONT))
    codes = group.terminate_all()
    report("hung_worker", backend, leases_held=8, lease_s=lease,
           takeover_s=round(took.takeover_s, 2))
    assert codes == [0, 0]
    assert "no longer extending" in group.log_of[took.frozen_pid].read_text()
    assert effect_counts(group.effects) == dict.fromkeys(took.ids, 1), "one effect each"
    assert all(str(took.rescuer.pid) in (app.get(i).worker_id or "") for i in took.ids)


def test_long_tasks_and_a_gil_holder_keep_their_leases(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    lease, seconds = 5.0, 12.0
    count = scaled(200, 16)
    processes = 4 if count > 32 else 2
    # On SQLite a thread holding the GIL can freeze its process inside a write transaction,
    # which stalls every process on the file (docs/architecture.md): a GIL-bound task belongs
    # in the process pool there. On the servers the lease keeper covers thread tasks as well.
    gil_task = chaos.hold_the_gil_in_process if backend == "sqlite" else chaos.hold_the_gil
    hog = gil_task.enqueue(seconds)
    handles = [hog, *chaos.effect.enqueue_many([((f"l{n}", seconds), {})
                                                for n in range(count - 1)])]
    group = workers(url, lease=lease, concurrency=8, args=("--prefetch", "0")).start(processes)
    began = time.monotonic()
    wait_until(lambda: all(app.get(h.id).state == TaskState.DONE for h in handles),
               timeout=60 + seconds * count / (8 * processes) * 2, interval=0.5,
               message="the long tasks did not finish")
    elapsed = time.monotonic() - began
    codes = group.terminate_all()
    infos = [app.get(h.id) for h in handles]
    released = sum(i.attempts - 1 for i in infos)
    held = hog.info().result
    report("heartbeat_long_tasks", backend, tasks=count, task_s=seconds, lease_s=lease,
           gil_task_lane="process" if backend == "sqlite" else "thread",
           gil_held_s=round(held, 1), re_leases=released,
           worker_lost=sum(i.worker_lost for i in infos), elapsed_s=round(elapsed, 1))
    assert codes == [0] * processes
    assert held >= seconds
    assert released == 0, "no lease lapsed"
    assert all(i.worker_lost == 0 for i in infos)
