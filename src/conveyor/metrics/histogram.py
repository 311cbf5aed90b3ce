"""The metric names and the latency histogram, defined once for every backend and reader.

Latencies are kept as bucket counts, not samples, so a backend only adds integers (cheap,
mergeable across workers and minutes) and percentiles are interpolated once, here, above it.
The bounds are the 1-2-5 series from 1 ms to 5000 s (beyond an hour), the last bucket open.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

BOUNDS: tuple[float, ...] = tuple(
    round(mantissa * 10.0 ** exponent, 6) for exponent in range(-3, 4) for mantissa in (1, 2, 5)
)
"""Upper bounds (inclusive, seconds) of the finite buckets; bucket ``len(BOUNDS)`` is +Inf."""
BUCKETS = len(BOUNDS) + 1

COUNTERS = ("enqueued", "started", "succeeded", "failed", "retried", "dead", "cancelled",
            "expired")
"""``started``: attempts that began running (a malformed message rejected at its start does not
count); ``failed``: attempts that raised (then ``retried`` or ``dead``); ``dead`` also counts tasks
rejected at claim (malformed, unknown) and leases lost too often; ``expired``: leases that ran
out (the task went back to the queue, or to the DLQ after ``max_worker_lost``)."""
HISTOGRAMS = ("wait", "latency", "duration")
"""``wait``: due time -> start of an attempt; ``latency``: due time -> success; ``duration``:
start -> end of an attempt that ran, however it ended."""


def bucket_of(seconds: float) -> int:
    """The bucket counting ``seconds`` (the first whose bound is >= it)."""
    return bisect_left(BOUNDS, seconds)


def bucket_name(histogram: str, index: int) -> str:
    return f"{histogram}_b{index}"


def sum_name(histogram: str) -> str:
    return f"{histogram}_sum"


def all_names() -> list[str]:
    """Every name a queue's metrics can hold (a backend reading a fixed set uses it)."""
    names = list(COUNTERS)
    for histogram in HISTOGRAMS:
        names.append(sum_name(histogram))
        names.extend(bucket_name(histogram, i) for i in range(BUCKETS))
    return names


def buckets(values: dict[str, float], histogram: str) -> list[int]:
    """The bucket counts of ``histogram`` from a name -> value mapping."""
    return [int(values.get(bucket_name(histogram, i), 0)) for i in range(BUCKETS)]


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) interpolated linearly inside its bucket, as Prometheus'
    ``histogram_quantile`` does; None without samples. A quantile in the open last bucket is
    reported as the last finite bound (a floor: "at least 5000 s")."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[index - 1] if index > 0 else 0.0
            return lower + (BOUNDS[index] - lower) * max(0.0, rank - seen) / count
        seen += count
    return BOUNDS[-1]
