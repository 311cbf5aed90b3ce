"""Turning read models into rich renderables and JSON, shared by the commands and the demo.

User data (args, errors, names) goes into ``Text`` objects, never markup strings, so a task
argument like ``"[red]"`` prints as itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from conveyor.model import LatencySummary, QueueStats, Stats, TaskInfo, TaskState, WorkerInfo

STATE_COLUMNS = tuple(TaskState)
STATE_STYLES = {
    TaskState.SCHEDULED: "cyan", TaskState.PENDING: "yellow", TaskState.RUNNING: "blue",
    TaskState.DONE: "green", TaskState.FAILED: "magenta", TaskState.DEAD: "red",
    TaskState.CANCELLED: "dim",
}


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def since(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    return f"{age(max(0.0, (now - moment).total_seconds()))} ago"


def last_line(text: str | None) -> str:
    """The exception line of a traceback: what an operator scans a list for."""
    if not text:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


# -- stats ---------------------------------------------------------------------------------------


def queues_table(stats: Stats, title: str | None = "Queues") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("QUEUE", style="bold")
    for state in STATE_COLUMNS:
        table.add_column(state.value, justify="right", style=STATE_STYLES[state])
    table.add_column("OLDEST PENDING", justify="right")
    for name in sorted(stats.queues):
        queue = stats.queues[name]
        table.add_row(Text(name), *(str(queue.count(s)) for s in STATE_COLUMNS),
                      age(queue.oldest_pending_age))
    if len(stats.queues) > 1:
        table.add_section()
        table.add_row("(all)", *(str(stats.total(s)) for s in STATE_COLUMNS), "")
    if not stats.queues:
        table.add_row(Text("(no tasks)", style="dim"), *([""] * (len(STATE_COLUMNS) + 1)))
    return table


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return age(value)


def percentiles(summary: LatencySummary) -> str:
    return " / ".join(seconds(v) for v in (summary.p50, summary.p95, summary.p99))


def activity_table(stats: Stats) -> Table:
    """What happened over the stats window, per queue: rates, DLQ growth, latencies, load."""
    window = max((q.window_seconds for q in stats.queues.values()), default=300.0)
    table = Table(title=f"Activity (last {age(window)}; rates per second)", title_justify="left")
    table.add_column("QUEUE", style="bold")
    for column in ("PAUSED", "ENQUEUED/s", "DONE/s", "FAILED/s", "DEAD/min", "ERRORS",
                   "WAIT p50/p95/p99", "LATENCY p50/p95/p99", "UTILIZATION"):
        table.add_column(column, justify="left" if column == "PAUSED" else "right")
    for name in sorted(stats.queues):
        q = stats.queues[name]
        table.add_row(
            Text(name), Text("paused", style="red") if q.paused else "",
            f"{q.rate('enqueued'):.2f}", f"{q.rate('succeeded'):.2f}", f"{q.rate('failed'):.2f}",
            f"{q.dead_per_minute:.2f}", f"{q.error_rate:.0%}", percentiles(q.wait),
            percentiles(q.latency), utilization(q),
        )
    if not stats.queues:
        table.add_row(Text("(no queues)", style="dim"), *([""] * 9))
    return table


def utilization(queue: QueueStats) -> str:
    if queue.utilization is None:
        return "no workers"
    return f"{queue.utilization:.0%} ({queue.busy_slots}/{queue.total_slots})"


def workers_table(workers: list[WorkerInfo], title: str | None = "Workers") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("WORKER", "HOST", "PID", "QUEUES"):
        table.add_column(column, overflow="fold")  # ids are copied from here: never cut them
    for column in ("BUSY/SLOTS", "UTILIZATION", "LAST SEEN"):
        table.add_column(column, justify="right")
    now = datetime.now(UTC)
    for w in sorted(workers, key=lambda w: w.id):
        table.add_row(Text(w.id), Text(w.host), str(w.pid), Text(",".join(w.queues)),
                      f"{w.busy}/{w.concurrency}", f"{w.utilization:.0%}", since(w.last_seen, now))
    if not workers:
        table.add_row(Text("(no workers)", style="dim"), "", "", "", "", "", "")
    return table


def stats_view(stats: Stats) -> RenderableType:
    summary = Text(
        f"Overall utilization: {stats.utilization:.0%} "
        f"({stats.busy_slots}/{stats.total_slots} slots busy, {len(stats.workers)} worker(s))"
    )
    return Group(queues_table(stats), activity_table(stats), workers_table(stats.workers),
                 summary)


def queue_json(q: QueueStats) -> dict[str, Any]:
    """One queue in ``conveyor stats --json`` (documented in docs/operations.md)."""
    return {
        "counts": {s.value: q.count(s) for s in STATE_COLUMNS},
        "oldest_pending_age": q.oldest_pending_age,
        "paused": q.paused,
        "window_seconds": q.window_seconds,
        "totals": {name: getattr(q, name) for name in (
            "enqueued", "succeeded", "failed", "retried", "dead", "cancelled", "expired")},
        "rates": {name: q.rate(name) for name in ("enqueued", "succeeded", "failed", "dead")},
        "dead_per_minute": q.dead_per_minute,
        "error_rate": q.error_rate,
        "wait": msgspec.to_builtins(q.wait),
        "latency": msgspec.to_builtins(q.latency),
        "workers": q.workers,
        "busy_slots": q.busy_slots,
        "total_slots": q.total_slots,
        "utilization": q.utilization,
        "series": msgspec.to_builtins(q.series),
    }


def stats_json(stats: Stats) -> dict[str, Any]:
    return {
        "queues": {name: queue_json(q) for name, q in sorted(stats.queues.items())},
        "totals": {s.value: stats.total(s) for s in STATE_COLUMNS},
        "workers": [
            {**msgspec.to_builtins(w), "utilization": w.utilization} for w in stats.workers
        ],
        "busy_slots": stats.busy_slots,
        "total_slots": stats.total_slots,
        "utilization": stats.utilization,
    }


# -- tasks ---------------------------------------------------------------------------------------


def task_json(info: TaskInfo) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.to_builtins(info)
    return value


def task_view(info: TaskInfo) -> RenderableType:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in task_json(info).items():
        if key == "error":
            continue
        if key == "attempt_errors":
            value = f"{len(info.attempt_errors)} kept" + (" (below)" if len(value) > 1 else "")
        shown = "-" if value is None else (
            json.dumps(value, default=str) if key in ("args", "kwargs", "result") else value)
        style = STATE_STYLES.get(info.state, "") if key == "state" else ""
        table.add_row(key, Text(str(shown), style=style))
    parts: list[RenderableType] = [table]
    if len(info.attempt_errors) > 1:  # a history: one line per attempt, oldest first
        parts.append(Text("\nerrors by attempt (the last 10 kept):", style="bold"))
        for attempt in info.attempt_errors:
            parts.append(Text(f"  #{attempt.attempt} {attempt.ended_at:%Y-%m-%dT%H:%M:%SZ} "
                              f"{attempt.worker or '-'}: {last_line(attempt.error)}"))
    if info.error:
        parts += [Text("\nerror (last attempt):", style="bold red"), Text(info.error)]
    return Group(*parts) if len(parts) > 1 else table


def dead_table(tasks: list[TaskInfo]) -> Table:
    table = Table(title=f"Dead-letter queue ({len(tasks)} shown)", title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("ID", no_wrap=True)  # copied into `dead requeue`: keep it on one line
    for column in ("NAME", "QUEUE", "TRIES", "REASON", "DIED", "ERROR"):
        table.add_column(column, overflow="fold", justify="right" if column == "TRIES" else "left")
    now = datetime.now(UTC)
    for t in tasks:
        table.add_row(Text(t.id), Text(t.name), Text(t.queue), str(t.attempts),
                      Text(t.dead_reason or "-"), since(t.completed_at, now),
                      Text(last_line(t.error)))
    return table
