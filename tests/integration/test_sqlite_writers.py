"""SQLite's write lock between processes: a producer is not starved by busy workers.

SQLite's own busy handler backs off to 100 ms between attempts. Two workers draining a backlog
take the lock again every few milliseconds, so a producer waiting that way found it free only
by chance: an enqueue waited up to 0.73 s (the peer benchmark's P workload, and once in three
runs of this scenario). The backend now asks for the lock every millisecond or so
(``sqlite/backend.py``, ``_begin``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conveyor import Conveyor

TESTS_DIR = Path(__file__).resolve().parent.parent


def test_enqueues_get_the_lock_while_two_workers_drain_a_backlog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    app = Conveyor(url)
    add = app.task(queue="default", name="apps.basic.add")(lambda a, b: a + b)
    for first in range(0, 10_000, 1_000):
        add.enqueue_many([((i, 1), {}) for i in range(first, first + 1_000)])
    env = {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(TESTS_DIR)}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "conveyor", "worker", "apps.basic:app", "-q", "default",
         "--concurrency", "128", "--prefetch", "128", "--log-level", "warning"], env=env)
        for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while app.stats().queues["default"].counts.get("DONE", 0) < 500:  # draining by now
            assert time.monotonic() < deadline, "the workers did not start draining"
            time.sleep(0.005)
        waits = []
        for i in range(30):
            started = time.monotonic()
            add.options(priority=9).enqueue(i, 2)
            waits.append(time.monotonic() - started)
        left = app.stats().queues["default"].counts.get("PENDING", 0)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
        app.close()
    assert left > 0, "the backlog ran out before the producer was done: nothing was measured"
    assert max(waits) < 0.25, [round(w * 1000, 1) for w in waits]
