"""From the counts the backend keeps to the read models: a queue's window (rates, percentiles,
a per-minute series) for ``app.stats()``, and its totals for Prometheus.

Each read is one ``MetricsRead``: the totals (minute 0) and the minutes of the window. The window
is made of whole minutes of the backend's clock, the current one included; ``window_seconds`` is
the span those minutes really cover (from the first minute's start to now), so rates divide by
the time their counts were gathered over.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from conveyor.backends.base import MetricCount
from conveyor.metrics.histogram import BUCKETS, COUNTERS, buckets, percentile, sum_name
from conveyor.model import LatencySummary, MinutePoint, to_datetime


def window_minutes(now: float, window_seconds: float) -> tuple[int, int]:
    """(first, last) minute of the window ending now; never less than half a minute of data."""
    last = int(now // 60)
    first = math.floor((now - window_seconds) / 60) + 1
    if now - first * 60 < min(window_seconds, 60.0) / 2:
        first -= 1
    return min(first, last), last


@dataclass
class QueueTotals:
    """One queue's counts since the beginning (never decreasing: what Prometheus scrapes)."""

    counters: dict[str, float] = field(default_factory=dict)
    wait_buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    wait_sum: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    latency_sum: float = 0.0
    duration_buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    duration_sum: float = 0.0


@dataclass
class QueueWindow:
    """One queue over the window: counters, percentiles, and one point per minute."""

    span_seconds: float
    counters: dict[str, int]
    wait: LatencySummary
    latency: LatencySummary
    duration: LatencySummary
    series: list[MinutePoint]

    @property
    def active(self) -> bool:
        return any(self.counters.values())


def totals(counts: list[MetricCount]) -> dict[str, QueueTotals]:
    by_queue: defaultdict[str, dict[str, float]] = defaultdict(dict)
    for c in counts:
        if c.minute == 0:
            by_queue[c.queue][c.name] = c.value
    return {
        queue: QueueTotals(
            counters={name: values.get(name, 0.0) for name in COUNTERS},
            wait_buckets=buckets(values, "wait"), wait_sum=values.get(sum_name("wait"), 0.0),
            latency_buckets=buckets(values, "latency"),
            latency_sum=values.get(sum_name("latency"), 0.0),
            duration_buckets=buckets(values, "duration"),
            duration_sum=values.get(sum_name("duration"), 0.0),
        )
        for queue, values in by_queue.items()
    }


def windows(
    counts: list[MetricCount], now: float, first: int, last: int
) -> dict[str, QueueWindow]:
    per_minute: defaultdict[str, defaultdict[int, dict[str, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for c in counts:
        if first <= c.minute <= last:
            per_minute[c.queue][c.minute][c.name] = c.value
    span = max(1.0, now - first * 60)
    return {queue: _window(minutes, first, last, span) for queue, minutes in per_minute.items()}


def _window(
    minutes: dict[int, dict[str, float]], first: int, last: int, span: float
) -> QueueWindow:
    counters = dict.fromkeys(COUNTERS, 0)
    wait = [0] * BUCKETS
    latency = [0] * BUCKETS
    duration = [0] * BUCKETS
    series = []
    for minute in range(first, last + 1):
        values = minutes.get(minute, {})
        for name in COUNTERS:
            counters[name] += int(values.get(name, 0))
        minute_wait, minute_latency = buckets(values, "wait"), buckets(values, "latency")
        wait = [a + b for a, b in zip(wait, minute_wait, strict=True)]
        latency = [a + b for a, b in zip(latency, minute_latency, strict=True)]
        duration = [a + b for a, b in zip(duration, buckets(values, "duration"), strict=True)]
        at = to_datetime(minute * 60.0)
        assert at is not None
        series.append(MinutePoint(
            at=at, enqueued=int(values.get("enqueued", 0)),
            succeeded=int(values.get("succeeded", 0)), failed=int(values.get("failed", 0)),
            retried=int(values.get("retried", 0)), dead=int(values.get("dead", 0)),
            wait_p99=percentile(minute_wait, 0.99), latency_p99=percentile(minute_latency, 0.99),
        ))
    return QueueWindow(span, counters, summary(wait), summary(latency), summary(duration),
                       series)


def summary(counts: list[int]) -> LatencySummary:
    return LatencySummary(
        count=sum(counts), p50=percentile(counts, 0.50), p95=percentile(counts, 0.95),
        p99=percentile(counts, 0.99),
    )
