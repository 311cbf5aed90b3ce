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
from collections.abc import Callable
from typing import NamedTuple

from conveyor.backends.base import ClaimedTask, Completion, Failure, MetricCount, RecordMetrics
from conveyor.metrics.histogram import (
    BUCKETS,
    COUNTERS,
    HISTOGRAMS,
    all_names,
    bucket_of,
    sum_name,
)

FLUSH_INTERVAL_SECONDS = 1.0
NAMES = all_names()
"""The layout of one (queue, minute) vector of counts: counters, then per histogram its sum and
its buckets (see :func:`conveyor.metrics.histogram.all_names`)."""
_AT = {name: index for index, name in enumerate(NAMES)}
_FAILED, _STARTED = _AT["failed"], _AT["started"]
_WAIT_SUM, _LATENCY_SUM = _AT[sum_name("wait")], _AT[sum_name("latency")]
_DURATION_SUM = _AT[sum_name("duration")]
_WAIT_FIRST, _LATENCY_FIRST, _DURATION_FIRST = _WAIT_SUM + 1, _LATENCY_SUM + 1, _DURATION_SUM + 1
assert len(NAMES) == len(COUNTERS) + len(HISTOGRAMS) * (1 + BUCKETS)


class Sample(NamedTuple):
    """How one attempt ended, on the backend's clock (a tuple: one per task, made cheaply)."""

    queue: str
    outcome: str
    """``succeeded``, ``retried`` or ``dead``."""
    minute: int
    wait: float | None
    """Due time -> start; None for a task that never started (rejected at claim)."""
    latency: float | None
    """Due time -> success; None unless it succeeded."""
    duration: float | None
    """Start -> end; None for a task that never started."""


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
        self._counts: dict[tuple[str, int], list[float]] = {}
        self._last_flush = time.monotonic()

    # -- while tasks run ---------------------------------------------------------------------------

    def claimed(self, tasks: list[ClaimedTask]) -> None:
        mono = time.monotonic()
        for task in tasks:
            self._claimed[task.id] = (task.lease_expires_at - self.lease_seconds, mono)

    def started(self, task: ClaimedTask) -> None:
        """An attempt begins: its start time, and the ``started`` counter of its minute."""
        now = self._started[task.id] = time.monotonic()
        mark = self._claimed.get(task.id)
        if mark is not None:
            self._vector(task.queue, int((mark[0] + now - mark[1]) // 60))[_STARTED] += 1

    def _vector(self, queue: str, minute: int) -> list[float]:
        counts = self._counts.get((queue, minute))
        if counts is None:
            counts = self._counts[(queue, minute)] = [0.0] * len(NAMES)
        return counts

    def started_at(self, task: ClaimedTask) -> float | None:
        """When ``task``'s attempt started, on the backend's clock (None: it has not started,
        or its lease was forgotten): the claim's time plus the monotonic time since."""
        mark = self._claimed.get(task.id)
        started = self._started.get(task.id)
        if mark is None or started is None:
            return None
        return mark[0] + max(0.0, started - mark[1])

    def forget(self, task_id: str) -> None:
        """A lease released or lost: that attempt reports nothing."""
        self._claimed.pop(task_id, None)
        self._started.pop(task_id, None)

    def sample(self, claimed: ClaimedTask, transition: Completion | Failure) -> Sample | None:
        """How this attempt ended (None if its lease was forgotten). The arithmetic is
        :func:`attempt_times`, inlined: this runs once per task."""
        mark = self._claimed.pop(claimed.id, None)
        started = self._started.pop(claimed.id, None)
        if mark is None:
            return None
        claimed_at, claimed_mono = mark
        now = time.monotonic()
        run: float | None
        if started is None:
            wait, run, ended_at = None, None, claimed_at + now - claimed_mono
        else:
            started_at = claimed_at + started - claimed_mono
            run = now - started
            wait = started_at - claimed.scheduled_at
            if wait < 0.0:
                wait = 0.0
            ended_at = started_at + run
        if type(transition) is Completion:
            return Sample(claimed.queue, "succeeded", int(ended_at // 60), wait,
                          None if wait is None or run is None else wait + run, run)
        retry_in = transition.retry_in_seconds  # type: ignore[union-attr]
        return Sample(claimed.queue, "dead" if retry_in is None else "retried",
                      int(ended_at // 60), wait, None, run)

    # -- aggregation -------------------------------------------------------------------------------

    def add(self, sample: Sample) -> None:
        """Count an attempt whose outcome the backend accepted (a few list increments)."""
        counts = self._vector(sample.queue, sample.minute)
        counts[_AT[sample.outcome]] += 1
        if sample.outcome != "succeeded":
            counts[_FAILED] += 1
        if sample.wait is not None:
            counts[_WAIT_FIRST + bucket_of(sample.wait)] += 1
            counts[_WAIT_SUM] += sample.wait
        if sample.latency is not None:
            counts[_LATENCY_FIRST + bucket_of(sample.latency)] += 1
            counts[_LATENCY_SUM] += sample.latency
        if sample.duration is not None:
            counts[_DURATION_FIRST + bucket_of(sample.duration)] += 1
            counts[_DURATION_SUM] += sample.duration

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
        counts, self._counts = self._counts, {}
        return RecordMetrics([
            MetricCount(queue, minute, NAMES[i], value)
            for (queue, minute), values in counts.items()
            for i, value in enumerate(values) if value
        ])

    def put_back(self, op: RecordMetrics) -> None:
        """A write that failed: its counts join the next one."""
        for c in op.counts:
            counts = self._counts.setdefault((c.queue, c.minute), [0.0] * len(NAMES))
            counts[_AT[c.name]] += c.value


class BusyMeter:
    """Busy slots averaged over time: each heartbeat reports the mean since the previous one, so
    a worker whose slots fill and empty between two heartbeats is not reported as idle (or as
    full) by the luck of one instant. Two monotonic reads per task."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._busy = 0
        self._changed = self._since = clock()
        self._area = 0.0

    def set(self, busy: int) -> None:
        now = self._clock()
        self._area += self._busy * (now - self._changed)
        self._busy, self._changed = busy, now

    def average(self) -> int:
        """The mean busy slots since the last call, rounded (the registry keeps whole slots)."""
        now = self._clock()
        area = self._area + self._busy * (now - self._changed)
        elapsed = now - self._since
        self._area, self._changed, self._since = 0.0, now, now
        return round(area / elapsed) if elapsed > 0 else self._busy
