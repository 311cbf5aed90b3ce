"""What the pages and the JSON API do, once, over the public ``Conveyor`` API.

Every function here is synchronous (the app's API is) and is called from a worker thread by the
handlers. Bad input raises :class:`BadRequest` or :class:`NotFound`, which both front ends turn
into a 4xx: user input must never surface as a server error.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from conveyor.app import Conveyor
from conveyor.backends.base import GetScheduleRuns
from conveyor.dashboard.models import (
    ActionResult,
    QueueView,
    ScheduleView,
    StatsView,
    TaskPage,
    WorkersView,
    WorkerView,
)
from conveyor.errors import ConveyorError
from conveyor.model import (
    WAITING_STATES,
    QueueStats,
    TaskInfo,
    TaskState,
    WorkerInfo,
    to_datetime,
)
from conveyor.schedule import next_due

MAX_PAGE = 500
MAX_IDS = 1000
MAX_NAME = 200
REQUEUE_ALL_BATCH = 500
DEFAULT_WINDOW = 300
MIN_WINDOW, MAX_WINDOW = 60, 86400


class BadRequest(Exception):
    status = 400


class NotFound(Exception):
    status = 404


class Forbidden(Exception):
    status = 403


# -- validation ----------------------------------------------------------------------------------


def parse_state(value: str | None) -> TaskState | None:
    if value is None or value == "":
        return None
    try:
        return TaskState(value.upper())
    except ValueError:
        raise BadRequest(f"unknown state {value!r}; one of "
                         f"{', '.join(s.value for s in TaskState)}") from None


def check_name(value: str, what: str = "queue") -> str:
    """Queue and schedule names come from URLs: refuse what no real name looks like."""
    if not value or len(value) > MAX_NAME or not value.isprintable():
        raise BadRequest(f"bad {what} name {value!r}")
    return value


def check_ids(ids: list[str]) -> list[str]:
    if not ids:
        raise BadRequest("no task ids given")
    if len(ids) > MAX_IDS:
        raise BadRequest(f"at most {MAX_IDS} ids per call")
    for task_id in ids:
        check_name(task_id, "task id")
    return list(dict.fromkeys(ids))


# -- reads ---------------------------------------------------------------------------------------


def queue_view(stats: QueueStats, workers: list[WorkerInfo]) -> QueueView:
    counts = {state.value: stats.count(state) for state in TaskState}
    return QueueView(
        queue=stats.queue,
        counts=counts,
        depth=sum(counts[s.value] for s in WAITING_STATES),
        running=counts[TaskState.RUNNING.value],
        paused=stats.paused,
        workers=sum(1 for w in workers if stats.queue in w.queues),
        oldest_pending_age=stats.oldest_pending_age,
        window_seconds=stats.window_seconds,
        enqueued=stats.enqueued,
        succeeded=stats.succeeded,
        failed=stats.failed,
        retried=stats.retried,
        dead=stats.dead,
        cancelled=stats.cancelled,
        throughput=stats.rate("succeeded"),
        error_rate=stats.error_rate,
        dead_per_minute=stats.dead_per_minute,
        wait=stats.wait,
        latency=stats.latency,
        series=list(stats.series),
    )


def workers_view(workers: list[WorkerInfo]) -> WorkersView:
    busy = sum(w.busy for w in workers)
    total = sum(w.concurrency for w in workers)
    return WorkersView(
        workers=[
            WorkerView(id=w.id, host=w.host, pid=w.pid, queues=list(w.queues),
                       concurrency=w.concurrency, busy=w.busy, utilization=w.utilization,
                       started_at=w.started_at, last_seen=w.last_seen)
            for w in sorted(workers, key=lambda w: (w.host, w.pid, w.id))
        ],
        busy_slots=busy,
        total_slots=total,
        utilization=busy / total if total else 0.0,
    )


def stats_view(app: Conveyor, read_only: bool, window: float = DEFAULT_WINDOW) -> StatsView:
    stats = app.stats(window=window)
    queues = dict(stats.queues)
    for name in app.all_queues():  # a declared queue with nothing in it yet still gets a card
        queues.setdefault(name, QueueStats(queue=name, counts={}))
    for name in app.paused_queues():
        queues.setdefault(name, QueueStats(queue=name, counts={}, paused=True))
    return StatsView(
        queues=[queue_view(queues[name], stats.workers) for name in sorted(queues)],
        workers=workers_view(stats.workers),
        read_only=read_only,
        generated_at=datetime.now(UTC),
    )


def one_queue(app: Conveyor, queue: str, window: float = DEFAULT_WINDOW) -> QueueView:
    check_name(queue)
    for view in stats_view(app, read_only=False, window=window).queues:
        if view.queue == queue:
            return view
    raise NotFound(f"no queue named {queue!r}")


def task_page(app: Conveyor, queue: str | None, state: TaskState | None,
              limit: int, offset: int) -> TaskPage:
    if queue is not None:
        check_name(queue)
    rows = app.list_tasks(queue=queue, state=state, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    return TaskPage(tasks=rows[:limit], limit=limit, offset=offset,
                    next_offset=offset + limit if more else None)


def get_task(app: Conveyor, task_id: str) -> TaskInfo:
    check_name(task_id, "task id")
    info = app.get(task_id)
    if info is None:
        raise NotFound(f"no task with id {task_id!r}")
    return info


def schedules(app: Conveyor) -> list[ScheduleView]:
    """Next run from the cron arithmetic, last run from the backend's record of enqueued runs
    (what ``conveyor cron`` shows)."""
    items = sorted(app.schedules.values(), key=lambda s: s.name)
    runs = {r.name: r for r in app.backend.execute(GetScheduleRuns([s.name for s in items]))}
    now = time.time()
    views = []
    for schedule in items:
        last = runs.get(schedule.name)
        following = to_datetime(next_due(schedule, now))
        assert following is not None
        views.append(ScheduleView(
            name=schedule.name, task=schedule.task_name, cron=schedule.expression,
            timezone=schedule.timezone, misfire=schedule.misfire, next_run=following,
            last_run=to_datetime(last.last_due_at) if last and last.last_task_id else None,
            last_task_id=last.last_task_id if last else None,
        ))
    return views


# -- actions -------------------------------------------------------------------------------------


def cancel(app: Conveyor, ids: list[str]) -> ActionResult:
    done = [task_id for task_id in check_ids(ids) if app.cancel(task_id)]
    return ActionResult(action="cancel", count=len(done), ids=done)


def requeue(app: Conveyor, ids: list[str]) -> ActionResult:
    moved = app.requeue(check_ids(ids))
    return ActionResult(action="requeue", count=len(moved), ids=list(moved))


def delete(app: Conveyor, ids: list[str]) -> ActionResult:
    """Tasks by id in any state but RUNNING (those are kept: their worker holds them)."""
    deleted = app.delete(check_ids(ids))
    return ActionResult(action="delete", count=len(deleted), ids=deleted)


def requeue_dead(app: Conveyor, queue: str | None) -> ActionResult:
    """Every dead task (of ``queue``), in batches: the DLQ can be larger than one page."""
    if queue is not None:
        check_name(queue)
    moved: list[str] = []
    while True:
        batch = [t.id for t in app.list_tasks(queue=queue, state=TaskState.DEAD,
                                               limit=REQUEUE_ALL_BATCH)]
        done = app.requeue(batch) if batch else []
        moved.extend(done)
        if len(batch) < REQUEUE_ALL_BATCH or not done:
            break
    return ActionResult(action="requeue", count=len(moved), ids=moved[:MAX_IDS], queue=queue)


def purge(app: Conveyor, queue: str | None, state: TaskState) -> ActionResult:
    if queue is not None:
        check_name(queue)
    if state == TaskState.RUNNING:
        raise BadRequest("RUNNING tasks cannot be purged; cancel or wait for them")
    try:
        count = app.purge(queue, state)
    except ConveyorError as exc:
        raise BadRequest(str(exc)) from None
    return ActionResult(action=f"purge {state.value}", count=count, queue=queue)


def pause(app: Conveyor, queue: str) -> ActionResult:
    app.pause(check_name(queue))
    return ActionResult(action="pause", count=1, queue=queue)


def resume(app: Conveyor, queue: str) -> ActionResult:
    app.resume(check_name(queue))
    return ActionResult(action="resume", count=1, queue=queue)


def run_schedule(app: Conveyor, name: str) -> ActionResult:
    """One run now, outside the cron rhythm: no run key, so it never collides with a due run."""
    schedule = app.schedules.get(check_name(name, "schedule"))
    if schedule is None:
        raise NotFound(f"no schedule named {name!r}")
    try:
        handle = app.enqueue(schedule.task_name, schedule.args, schedule.kwargs,
                             **schedule.options)
    except ConveyorError as exc:
        raise BadRequest(str(exc)) from None
    return ActionResult(action="run", count=1, ids=[handle.id])
