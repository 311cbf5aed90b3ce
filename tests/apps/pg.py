"""An app for tests that run real worker processes on PostgreSQL. The URL comes from
CONVEYOR_URL; the test creates the ``effects`` table its transactional task writes to."""

from __future__ import annotations

import os
import time

from conveyor import Conveyor, current_task

# No usable default: a test that forgets to point the app at its own database fails loudly
# instead of writing to a shared one.
app = Conveyor(os.environ.get("CONVEYOR_URL", "postgresql://set-CONVEYOR_URL.invalid/none"),
               lease=float(os.environ.get("CONVEYOR_LEASE", "30")), max_worker_lost=1000)


@app.task(queue="effects", transactional=True, max_retries=1000)
def insert_effect(n: int, hold_seconds: float = 0.0) -> int:
    """Writes one row keyed by its task id, then holds the transaction open for a moment (so a
    SIGKILL lands inside it); the row and the task's DONE commit together."""
    ctx = current_task()
    ctx.connection.execute(
        "INSERT INTO effects (task_id, n, attempt, pid) VALUES (%s, %s, %s, %s)",
        (ctx.id, n, ctx.attempt, os.getpid()),
    )
    if hold_seconds:
        time.sleep(hold_seconds)
    return n


@app.task(queue="slow")
def slow(seconds: float) -> float:
    """Runs longer than the lease, so only heartbeats keep it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return time.time()


@app.task(queue="pings")
def ping(n: int) -> int:
    return n
