"""Exactly-once transactional completion under SIGKILL: worker processes are killed again and
again in the middle of many transactional tasks (each inserting a row keyed by its task id);
at the end every task is DONE and every row exists exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from helpers import wait_until

pytestmark = pytest.mark.slow
TASKS = 300
WORKERS = 3


def test_kill_9_workers_mid_transaction_every_row_once(
    effects_table: str, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url = effects_table
    from apps import pg

    app = pg.app
    app.use(url)  # this test's database (the module's app is shared by the session)
    try:
        handles = pg.insert_effect.enqueue_many([((n, 0.1), {}) for n in range(TASKS)])
        ids = {h.id for h in handles}

        def spawn() -> subprocess.Popen[bytes]:
            return start_worker(url, "-q", "effects", "--concurrency", "4", lease=1.0)

        workers = [spawn() for _ in range(WORKERS)]
        rng = random.Random(7)
        kills = 0
        deadline = time.monotonic() + 20
        while _done(url) < TASKS * 0.9 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 0.8))  # workers run meanwhile; not a wait for a result
            victim = rng.randrange(WORKERS)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(10)
            kills += 1
            workers[victim] = spawn()
        wait_until(lambda: _done(url) == TASKS, timeout=45, interval=0.2,
                   message=f"not every task finished ({_done(url)}/{TASKS})")
        for worker in workers:
            worker.terminate()
            worker.wait(30)
        rows = _rows(url)
        infos = [app.get(h.id) for h in handles]
    finally:
        app.close()
    assert kills >= 5, "the workers were killed while they worked"
    assert set(rows) == ids, "every task's row exists"
    assert [task_id for task_id, n in Counter(rows).items() if n > 1] == [], "and only once"
    assert Counter(info.state for info in infos if info) == {"DONE": TASKS}
    redelivered = sum(1 for info in infos if info and info.worker_lost)
    assert redelivered > 0, "some kills landed inside a task's transaction"
    print(f"{kills} kills, {redelivered} tasks redelivered after a kill")


def _done(url: str) -> int:
    with psycopg.connect(url) as conn:
        [(count,)] = conn.execute(
            "SELECT count(*) FROM conveyor_tasks WHERE state = 'DONE'").fetchall()
    return int(count)


def _rows(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(t) for (t,) in conn.execute("SELECT task_id FROM effects").fetchall()]
