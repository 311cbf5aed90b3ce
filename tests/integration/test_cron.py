"""Cron schedules enqueued by one leader among several schedulers, in threads and in processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conveyor import Conveyor, TaskState
from conveyor.scheduler.runner import SchedulerProcess
from helpers import wait_until

TESTS_DIR = Path(__file__).resolve().parents[1]


def run_keys(app: Conveyor, schedule: str) -> list[int]:
    tasks = app.list_tasks(limit=100_000)
    prefix = f"cron:{schedule}:"
    return sorted(int(t.idempotency_key[len(prefix):]) for t in tasks
                  if (t.idempotency_key or "").startswith(prefix))


def test_a_worker_with_scheduler_enqueues_and_runs_each_due_run(app: Conveyor,
                                                                start_worker) -> None:
    ran: list[int] = []

    @app.cron("* * * * * *", name="tick")
    def tick() -> None:
        ran.append(1)

    start_worker(app, scheduler=True, leader_ttl=2.0)
    wait_until(lambda: len(ran) >= 3, timeout=15)
    keys = run_keys(app, "tick")
    assert keys == list(range(keys[0], keys[0] + len(keys))), "one task per second, no gap"
    assert all(t.state in (TaskState.DONE, TaskState.PENDING, TaskState.RUNNING)
               for t in app.list_tasks())


def test_two_schedulers_in_one_process_enqueue_each_run_once(app: Conveyor) -> None:
    @app.cron("* * * * * *", name="tick")
    def tick() -> None: ...

    schedulers = [SchedulerProcess(app, leader_ttl=2.0, holder=f"s{i}") for i in range(2)]
    threads = [threading.Thread(target=s.run) for s in schedulers]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(run_keys(app, "tick")) >= 3, timeout=15)
    finally:
        for s in schedulers:
            s.stop()
        for thread in threads:
            thread.join(10)
    assert sum(s.cron.leader.passes > 0 for s in schedulers) == 2
    assert sum(s.cron.enqueued for s in schedulers) == len(run_keys(app, "tick"))


@pytest.mark.slow
def test_three_scheduler_processes_survive_the_leader_being_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cron.db'}"
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": path}
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(3)]
    processes = []
    for log in logs:
        with open(log, "wb") as out:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "conveyor", "scheduler", "apps.cron_app:app",
                 "--leader-ttl", "2"], env=env, cwd=TESTS_DIR, stdout=out, stderr=out))
    app = Conveyor(url)
    from apps import cron_app

    app.tasks.update(cron_app.app.tasks)

    def leader() -> int | None:
        taken = [i for i, log in enumerate(logs) if "took the 'cron' lock" in log.read_text()]
        return taken[0] if len(taken) == 1 else None

    try:
        wait_until(lambda: leader() is not None, timeout=30, message="no scheduler leads")
        first = leader()
        assert first is not None
        started = time.time()
        wait_until(lambda: time.time() - started > 8, timeout=20, interval=0.2)
        processes[first].send_signal(signal.SIGKILL)
        processes[first].wait(10)
        killed_at = time.time()
        wait_until(lambda: sum("took the 'cron' lock" in log.read_text() for log in logs) == 2,
                   timeout=10, message="no scheduler took over")
        takeover = time.time() - killed_at
        wait_until(lambda: time.time() - started > 20, timeout=30, interval=0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(20)
    keys = run_keys(app, "tick")
    assert len(keys) >= 19
    assert keys == list(range(keys[0], keys[-1] + 1)), "every second enqueued once, no gap"
    assert takeover <= 2.0 + 1.5, f"takeover took {takeover:.1f}s with a 2 s lock TTL"
