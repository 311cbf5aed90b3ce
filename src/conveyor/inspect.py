"""Turning stored rows into the public read models (``TaskInfo``, ``Stats``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from conveyor.backends.base import (
    WORKER_SILENCE_SECONDS,
    MetricCount,
    QueueCounts,
    TaskRow,
    WorkerRow,
)
from conveyor.metrics.read import windows
from conveyor.model import (
    AttemptError,
    QueueStats,
    Stats,
    TaskInfo,
    TaskState,
    WorkerInfo,
    to_datetime,
)
from conveyor.serialization import PayloadDecodeError, decode_payload, decode_result


def live_workers(rows: list[WorkerRow], now: float) -> list[WorkerRow]:
    """The registry without workers silent for ``WORKER_SILENCE_SECONDS`` (backend clock): a
    worker that died stays registered until a live one prunes it, and with none left it would
    count in utilization for ever and hide the ``no_workers`` alert."""
    return [w for w in rows if now - w.last_seen <= WORKER_SILENCE_SECONDS]


def task_info(row: TaskRow) -> TaskInfo:
    payload_error = None
    try:
        args, kwargs = decode_payload(row.payload)
    except PayloadDecodeError as exc:
        args, kwargs, payload_error = (), {}, str(exc)
    try:
        state = TaskState(row.state)
    except ValueError:
        state = TaskState.DEAD
        payload_error = payload_error or f"unknown state {row.state!r}"
    created = to_datetime(row.created_at)
    assert created is not None
    return TaskInfo(
        id=row.id,
        name=row.name,
        queue=row.queue,
        args=tuple(args),
        kwargs=dict(kwargs),
        priority=row.priority,
        state=state,
        attempts=row.attempts,
        max_retries=row.max_retries,
        created_at=created,
        scheduled_at=to_datetime(row.scheduled_at),
        started_at=to_datetime(row.started_at),
        completed_at=to_datetime(row.completed_at),
        worker_id=row.worker_id,
        error=row.error,
        result=decode_result(row.result),
        idempotency_key=row.idempotency_key,
        dead_reason=row.dead_reason,
        worker_lost=row.worker_lost,
        timeout=row.timeout_seconds,
        payload_error=payload_error,
        attempt_errors=_attempt_errors(row.attempt_errors),
    )


class _StoredAttempt(msgspec.Struct):
    """One entry of TaskRow.attempt_errors, as every backend writes it."""

    attempt: int
    worker: str | None
    ended_at: float
    error: str


_attempts = msgspec.json.Decoder(list[_StoredAttempt])


def _attempt_errors(raw: str | None) -> list[AttemptError]:
    """The backend's JSON text; a record that cannot be read shows no history, not an error."""
    if not raw:
        return []
    try:
        stored = _attempts.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    return [AttemptError(attempt=a.attempt, worker=a.worker, error=a.error,
                         ended_at=datetime.fromtimestamp(a.ended_at, tz=UTC))
            for a in stored]


def worker_info(row: WorkerRow) -> WorkerInfo:
    started, seen = to_datetime(row.started_at), to_datetime(row.last_seen)
    assert started is not None and seen is not None
    return WorkerInfo(
        id=row.id, host=row.host, pid=row.pid, queues=row.queues,
        concurrency=row.concurrency, busy=row.busy, started_at=started, last_seen=seen,
    )


def stats(
    counts: list[QueueCounts], workers: list[WorkerRow], now: float,
    metrics: list[MetricCount] | None = None, window: tuple[int, int] | None = None,
) -> Stats:
    """Depth per state now, plus (given the metrics read for ``window``, (first, last) minute)
    what happened over the window."""
    first, last = window or (int(now // 60), int(now // 60))
    activity = windows(metrics or [], now, first, last)
    by_name = {c.queue: c for c in counts}
    names = sorted(set(by_name) | {q for q, w in activity.items() if w.active})
    queues = {}
    for name in names:
        c = by_name.get(name)
        serving = [w for w in workers if name in w.queues]
        queue = QueueStats(
            queue=name,
            counts=dict(c.counts) if c else {},
            oldest_pending_age=None if c is None or c.oldest_pending_at is None
            else max(0.0, now - c.oldest_pending_at),
            paused=c.paused if c else False,
            workers=len(serving), busy_slots=sum(w.busy for w in serving),
            total_slots=sum(w.concurrency for w in serving),
        )
        seen = activity.get(name)
        if seen is not None:
            queue.window_seconds = seen.span_seconds
            for counter, value in seen.counters.items():
                setattr(queue, counter, value)
            queue.wait, queue.latency, queue.series = seen.wait, seen.latency, seen.series
            queue.duration = seen.duration
        queues[name] = queue
    return Stats(queues=queues, workers=[worker_info(w) for w in workers])
