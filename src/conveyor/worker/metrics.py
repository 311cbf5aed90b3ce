"""The worker's share of the metrics: how each attempt ended and how long it waited and took,
aggregated in memory and written as one ``RecordMetrics`` per flush (about once a second).

Times are on the backend's clock without ever reading the worker's wall clock, so a worker
whose clock is off still reports true latencies: a claim's start is its lease deadline minus the
lease it asked for (both from the backend), and everything after it is measured with
``time.monotonic()``. The per-task cost is a few dict operations; there is no round trip per
task.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from conveyor.backends.base import ClaimedTask, Completion, Failure, MetricCount, RecordMetrics
from conveyor.metrics.histogram import bucket_name, bucket_of, sum_name

FLUSH_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Sample:
    """How one attempt ended, on the backend's clock."""

    queue: str
    outcome: str
    """``succeeded``, ``retried`` or ``dead``."""
    minute: int
    wait: float | None
    """Due time -> start; None for a task that never started (rejected at claim)."""
    latency: float | None
    """Due time -> success; None unless it succeeded."""


def attempt_times(
    scheduled_at: float, claimed_at: float, claimed_mono: float, started_mono: float | None,
    ended_mono: float,
) -> tuple[float | None, float, float]:
    """(wait, run seconds, end time) of an attempt: backend-clock claim time plus monotonic
    offsets. ``started_mono`` None: the task never started (it sat in the prefetch buffer)."""
    if started_mono is None:
        return None, 0.0, claimed_at + max(0.0, ended_mono - claimed_mono)
    started_at = claimed_at + max(0.0, started_mono - claimed_mono)
    run = max(0.0, ended_mono - started_mono)
    return max(0.0, started_at - scheduled_at), run, started_at + run


class MetricsRecorder:
    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._claimed: dict[str, tuple[float, float]] = {}
        """id -> (claim time on the backend clock, monotonic time of the claim's reply)."""
        self._started: dict[str, float] = {}
        self._counts: defaultdict[tuple[str, int, str], float] = defaultdict(float)
        self._last_flush = time.monotonic()

    # -- while tasks run ---------------------------------------------------------------------------

    def claimed(self, tasks: list[ClaimedTask]) -> None:
        mono = time.monotonic()
        for task in tasks:
            self._claimed[task.id] = (task.lease_expires_at - self.lease_seconds, mono)

    def started(self, task_id: str) -> None:
        self._started[task_id] = time.monotonic()

    def forget(self, task_id: str) -> None:
        """A lease released or lost: that attempt reports nothing."""
        self._claimed.pop(task_id, None)
        self._started.pop(task_id, None)

    def sample(self, claimed: ClaimedTask, transition: Completion | Failure) -> Sample | None:
        mark = self._claimed.pop(claimed.id, None)
        started = self._started.pop(claimed.id, None)
        if mark is None:
            return None
        wait, run, ended_at = attempt_times(
            claimed.scheduled_at, mark[0], mark[1], started, time.monotonic()
        )
        if isinstance(transition, Completion):
            outcome = "succeeded"
            latency = None if wait is None else wait + run
        else:
            outcome = "dead" if transition.retry_in_seconds is None else "retried"
            latency = None
        return Sample(claimed.queue, outcome, int(ended_at // 60), wait, latency)

    # -- aggregation -------------------------------------------------------------------------------

    def add(self, sample: Sample) -> None:
        """Count an attempt whose outcome the backend accepted."""
        counts, key = self._counts, (sample.queue, sample.minute)
        counts[(*key, sample.outcome)] += 1
        if sample.outcome != "succeeded":
            counts[(*key, "failed")] += 1
        for histogram, seconds in (("wait", sample.wait), ("latency", sample.latency)):
            if seconds is not None:
                counts[(*key, bucket_name(histogram, bucket_of(seconds)))] += 1
                counts[(*key, sum_name(histogram))] += seconds

    @property
    def pending(self) -> bool:
        return bool(self._counts)

    def due(self) -> bool:
        return bool(self._counts) and (
            time.monotonic() - self._last_flush >= FLUSH_INTERVAL_SECONDS
        )

    def take(self) -> RecordMetrics | None:
        """The counts gathered since the last take, as one transition (None: nothing new)."""
        self._last_flush = time.monotonic()
        if not self._counts:
            return None
        counts, self._counts = self._counts, defaultdict(float)
        return RecordMetrics([MetricCount(q, m, n, v) for (q, m, n), v in counts.items()])

    def put_back(self, op: RecordMetrics) -> None:
        """A write that failed: its counts join the next one."""
        for c in op.counts:
            self._counts[(c.queue, c.minute, c.name)] += c.value
