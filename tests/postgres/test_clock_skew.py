"""Leases run on the database's clock: workers whose own clocks are 30 s fast and 30 s slow
neither steal each other's leases (recovery) nor lose their own (claims, heartbeats)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from conveyor import Conveyor, TaskState
from helpers import wait_until


def test_skewed_workers_neither_steal_nor_lose_leases(
    pg_url: str, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    app = Conveyor(pg_url, lease=1.0)
    try:
        from apps import pg

        app.tasks.update(pg.app.tasks)
        # Each runs past the 1 s lease: only heartbeats keep it, and a rescuer using a clock
        # 30 s fast would find every lease expired, one 30 s slow would write expired leases.
        handles = [app.enqueue(pg.slow.name, (1.5,)) for _ in range(6)]
        workers = [
            start_worker(pg_url, "-q", "slow", "--concurrency", "3", lease=1.0,
                         env={"CONVEYOR_CLOCK_SKEW": skew})
            for skew in ("30", "-30")
        ]
        wait_until(lambda: all(h.info().state == TaskState.DONE for h in handles), timeout=30,
                   interval=0.1, message="the slow tasks did not finish")
        for worker in workers:
            worker.terminate()
            assert worker.wait(30) == 0
        infos = [h.info() for h in handles]
        assert [(i.attempts, i.worker_lost) for i in infos] == [(1, 0)] * 6
        skewed = [i.result for i in infos]  # each task returns its worker's time.time()
        server_done = [i.completed_at.timestamp() for i in infos]
        assert any(abs(s - d - 30) < 5 or abs(s - d + 30) < 5 for s, d in zip(
            skewed, server_done, strict=True)), "the shim did skew the workers' clocks"
    finally:
        app.close()
