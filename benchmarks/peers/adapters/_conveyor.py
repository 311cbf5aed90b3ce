"""Conveyor as a peer: its own benchmark app (``conveyor.bench``) in its own virtualenv.

The three ``conveyor_*`` adapters differ only in the URL and in nothing else: the backend is
chosen by the URL scheme, so a new backend is one three-line module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness

from adapters import _record
from conveyor import bench
from conveyor.backends.base import Now

CONCURRENCY = int(os.environ.get("CONVEYOR_BENCH_CONCURRENCY", "128"))
"""Slots per worker process: bigger batches, fewer round trips per task."""
PREFETCH = int(os.environ.get("CONVEYOR_BENCH_PREFETCH", str(CONCURRENCY)))
"""Tasks claimed ahead per worker process. Smaller slots and prefetch trade drain rate for the
priority workload's wait (see the seventh session's sweep in ``benchmarks/README.md``)."""
CLAIM_BATCH = os.environ.get("CONVEYOR_BENCH_CLAIM_BATCH", "")
"""Most tasks one claim takes ('' = the backend's: 32 on Redis). Smaller claims shorten the
claim cycle a priority-9 task waits for, at a cost in drain rate (``benchmarks/README.md``,
fourteenth session)."""
PROCESSES = int(os.environ.get("CONVEYOR_BENCH_PROCESSES", "2"))
"""Worker processes, 2 like every peer; fewer leave the two cores headroom (what the priority
wait is made of under a saturated machine: ``benchmarks/README.md``, thirteenth session)."""
_CLAIM_ARGS = ["--claim-batch", CLAIM_BATCH] if CLAIM_BATCH else []
_CLAIMS = CLAIM_BATCH or "the backend's claim_batch: 32 on Redis"
SETTINGS = (f"{PROCESSES} x `conveyor worker conveyor.bench:app -q bench --concurrency {CONCURRENCY} "
            f"--prefetch {PREFETCH}{''.join(' ' + a for a in _CLAIM_ARGS)}` (plain def handler, "
            f"thread pool; claims of at most {_CLAIMS}); enqueue_many")
PRIORITY = {None: None, "low": 1, "high": 9}


def worker_commands(url: str, record: Path, workload: str) -> list[harness.Command]:
    env = {"CONVEYOR_URL": url, "CONVEYOR_BENCH_RECORD": str(record)}
    argv = [harness.bin_path("python"), "-m", "conveyor", "worker", "conveyor.bench:app",
            "-q", bench.QUEUE, "--concurrency", str(CONCURRENCY), "--prefetch",
            str(PREFETCH), *_CLAIM_ARGS, "--log-level", "warning"]
    return [harness.Command(argv, env) for _ in range(PROCESSES)]


class Producer(harness.Producer):
    bulk = True

    def open(self) -> None:
        """Connect, and create the schema on a fresh store, before anything is timed: the
        peers connect in ``open`` and install their schema in ``prepare`` too (a first enqueue
        that migrated cost ~100 ms of a ~0.7 s T enqueue on PostgreSQL)."""
        bench.app.use(_record.url())
        bench.app.backend.execute(Now())

    def _task(self, priority: str | None) -> Any:
        if PRIORITY[priority] is None:
            return bench.noop
        return bench.noop.options(priority=PRIORITY[priority])

    def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        self._task(priority).enqueue(number, ref)

    def enqueue_many(self, items: Sequence[tuple[int, float]], priority: str | None = None
                     ) -> None:
        self._task(priority).enqueue_many([((number, ref), {}) for number, ref in items])

    def enqueue_at(self, number: int, due: float) -> None:
        bench.noop.options(eta=datetime.fromtimestamp(due, UTC)).enqueue(number, due)

    def close(self) -> None:
        bench.app.close()
