"""The cluster-wide Prometheus exposition: queue state and the backend-kept counters, read at
scrape time by a custom collector on a private registry (nothing is registered globally, so an
app embedding this keeps its own default registry as it was).

Names follow Prometheus conventions (base units, ``_total`` counters, ``queue`` labels, no ids
as labels)::

    conveyor_queue_tasks{queue,state}                 gauge   tasks per state now
    conveyor_queue_oldest_task_age_seconds{queue}     gauge   age of the oldest PENDING task
    conveyor_queue_paused{queue}                      gauge   1 while the queue is paused
    conveyor_queue_busy_slots / conveyor_queue_slots{queue}  gauge  of the workers serving it
    conveyor_workers                                  gauge   registered workers
    conveyor_worker_busy_slots / conveyor_worker_slots gauge  summed over workers
    conveyor_tasks_enqueued_total{queue}              counter
    conveyor_tasks_finished_total{queue,status}       counter succeeded|failed|retried|dead|
                                                              cancelled|expired
    conveyor_task_queue_wait_seconds{queue}           histogram  due time -> start
    conveyor_task_latency_seconds{queue}              histogram  due time -> success

Counters and histograms come from the totals the backend keeps since the beginning, so every
exporter (any number may run) reports the same values, and they never go down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from conveyor.backends.base import ListWorkers, MetricsRead, Now, QueueStatsRead, WorkerRow
from conveyor.inspect import live_workers
from conveyor.metrics.histogram import BOUNDS, COUNTERS
from conveyor.metrics.read import QueueTotals, totals
from conveyor.model import TaskState

if TYPE_CHECKING:
    from conveyor.app import Conveyor

FINISHED = tuple(name for name in COUNTERS if name not in ("enqueued", "started"))


class ConveyorCollector(Collector):
    """Reads the backend at every scrape (four reads, whatever the number of tasks)."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        backend = self.app.backend
        counts = backend.execute(QueueStatsRead())
        now = backend.execute(Now())
        workers = live_workers(backend.execute(ListWorkers()), now)
        kept = totals(backend.execute(MetricsRead(-1, -1)))  # no minute: the totals only
        queues = sorted({c.queue for c in counts} | set(kept))

        tasks = GaugeMetricFamily("conveyor_queue_tasks", "Tasks per queue and state.",
                                  labels=["queue", "state"])
        oldest = GaugeMetricFamily("conveyor_queue_oldest_task_age_seconds",
                                   "Age of the oldest PENDING task (0 when none).",
                                   labels=["queue"])
        paused = GaugeMetricFamily("conveyor_queue_paused", "1 while the queue is paused.",
                                   labels=["queue"])
        busy = GaugeMetricFamily("conveyor_queue_busy_slots",
                                 "Busy slots of the workers serving the queue.", labels=["queue"])
        slots = GaugeMetricFamily("conveyor_queue_slots",
                                  "Slots of the workers serving the queue.", labels=["queue"])
        by_queue = {c.queue: c for c in counts}
        for queue in queues:
            c = by_queue.get(queue)
            for state in TaskState:
                tasks.add_metric([queue, state.value], c.counts.get(state.value, 0) if c else 0)
            age = 0.0 if c is None or c.oldest_pending_at is None else now - c.oldest_pending_at
            oldest.add_metric([queue], max(0.0, age))
            paused.add_metric([queue], 1.0 if c is not None and c.paused else 0.0)
            serving = [w for w in workers if queue in w.queues]
            busy.add_metric([queue], sum(w.busy for w in serving))
            slots.add_metric([queue], sum(w.concurrency for w in serving))
        yield from (tasks, oldest, paused, busy, slots)

        yield GaugeMetricFamily("conveyor_workers", "Registered workers.", value=len(workers))
        yield GaugeMetricFamily("conveyor_worker_busy_slots", "Slots running a task, all workers.",
                                value=sum(w.busy for w in workers))
        yield GaugeMetricFamily("conveyor_worker_slots", "Slots (concurrency), all workers.",
                                value=sum(w.concurrency for w in workers))
        yield from _per_worker(workers, now)
        yield from _counters(kept)
        yield from _histograms(kept)


def _per_worker(workers: list[WorkerRow], now: float) -> Iterator[Metric]:
    """One series per registered worker: which one is saturated, or silent. Bounded: a worker
    leaves the registry when it stops, or after five minutes of silence when it died."""
    utilization = GaugeMetricFamily(
        "conveyor_worker_utilization", "Share of the worker's slots running a task (0-1), "
        "as of its last heartbeat.", labels=["worker", "host"])
    silence = GaugeMetricFamily(
        "conveyor_worker_heartbeat_age_seconds", "Seconds since the worker's last heartbeat.",
        labels=["worker", "host"])
    for w in workers:
        utilization.add_metric([w.id, w.host], w.busy / w.concurrency if w.concurrency else 0.0)
        silence.add_metric([w.id, w.host], max(0.0, now - w.last_seen))
    yield from (utilization, silence)


def _counters(kept: dict[str, QueueTotals]) -> Iterator[Metric]:
    enqueued = CounterMetricFamily("conveyor_tasks_enqueued", "Tasks enqueued.",
                                   labels=["queue"])
    started = CounterMetricFamily("conveyor_tasks_started", "Attempts that began running.",
                                  labels=["queue"])
    finished = CounterMetricFamily(
        "conveyor_tasks_finished",
        "Attempts by how they ended (failed = raised; then retried or dead; expired = lease "
        "ran out).", labels=["queue", "status"])
    for queue, t in sorted(kept.items()):
        enqueued.add_metric([queue], t.counters.get("enqueued", 0.0))
        started.add_metric([queue], t.counters.get("started", 0.0))
        for status in FINISHED:
            finished.add_metric([queue, status], t.counters.get(status, 0.0))
    yield from (enqueued, started, finished)


def _histograms(kept: dict[str, QueueTotals]) -> Iterator[Metric]:
    wait = HistogramMetricFamily("conveyor_task_queue_wait_seconds",
                                 "Due time to start of an attempt.", labels=["queue"])
    latency = HistogramMetricFamily("conveyor_task_latency_seconds",
                                    "Due time to success (what a producer waits for).",
                                    labels=["queue"])
    duration = HistogramMetricFamily("conveyor_task_duration_seconds",
                                     "Start to end of an attempt that ran, however it ended.",
                                     labels=["queue"])
    for queue, t in sorted(kept.items()):
        wait.add_metric([queue], _cumulative(t.wait_buckets), t.wait_sum)
        latency.add_metric([queue], _cumulative(t.latency_buckets), t.latency_sum)
        duration.add_metric([queue], _cumulative(t.duration_buckets), t.duration_sum)
    yield from (wait, latency, duration)


def _cumulative(counts: list[int]) -> list[tuple[str, float]]:
    running, found = 0, []
    for bound, count in zip((*(repr(b) for b in BOUNDS), "+Inf"), counts, strict=True):
        running += count
        found.append((bound, float(running)))
    return found


def registry(app: Conveyor) -> CollectorRegistry:
    """A private registry holding only Conveyor's collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ConveyorCollector(app))
    return reg


def exposition(app: Conveyor) -> bytes:
    """The text exposition of ``app``'s metrics, read now."""
    return generate_latest(registry(app))


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def asgi_app(app: Conveyor) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A bare ASGI app answering any GET with the exposition. The backend is read in a thread,
    so a slow store never blocks the host app's event loop."""
    reg = registry(app)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _reply(send, 405, b"method not allowed\n", "text/plain")
            return
        try:
            body = await asyncio.to_thread(generate_latest, reg)
        except Exception as exc:
            await _reply(send, 503, f"backend unreachable: {exc}\n".encode(), "text/plain")
            return
        await _reply(send, 200, b"" if scope.get("method") == "HEAD" else body,
                     CONTENT_TYPE_LATEST)

    return serve


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
