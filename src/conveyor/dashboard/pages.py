"""The server-rendered pages, and the form posts their buttons send.

Pages read through :mod:`conveyor.dashboard.service` like the API does; the only script they
need is ``static/dashboard.js`` for live numbers and graphs. Every form carries the CSRF token
and answers with a redirect (303) back to the page it came from, with a one-line notice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.backends.base import ATTEMPT_ERROR_CHARS
from conveyor.dashboard import service
from conveyor.dashboard.context import dashboard_of
from conveyor.dashboard.security import CSRF_FIELD
from conveyor.model import WAITING_STATES, TaskState

PAGE_SIZE = 50
ServiceError = (service.BadRequest, service.NotFound, service.Forbidden)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    dashboard = dashboard_of(request)
    token = dashboard.csrf.token_for(request)
    context.setdefault("page", "")
    html = dashboard.templates.get_template(template).render(
        base=request.scope.get("root_path", ""), csrf_token=token,
        read_only=dashboard.read_only, notice=request.query_params.get("notice"),
        path=request.url.path, poll_ms=int(dashboard.poll_seconds * 1000),
        states=[s.value for s in TaskState], **context,
    )
    response = HTMLResponse(html, status_code=status)
    dashboard.csrf.set_cookie(request, response, token)
    return response


def error_page(request: Request, exc: Exception) -> HTMLResponse:
    status = getattr(exc, "status", 400)
    return render(request, "error.html", status=status, message=str(exc), status_code=status)


def _int(request: Request, name: str, default: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise service.BadRequest(f"{name} must be an integer") from None
    if not 0 <= value <= 10_000_000:
        raise service.BadRequest(f"{name} out of range")
    return value


# -- pages ---------------------------------------------------------------------------------------


WINDOWS = [("5m", 300), ("15m", 900), ("1h", 3600), ("6h", 21600), ("24h", 86400)]


async def overview(request: Request) -> Response:
    d = dashboard_of(request)
    try:
        window = _int(request, "window", service.DEFAULT_WINDOW)
        if not service.MIN_WINDOW <= window <= service.MAX_WINDOW:
            raise service.BadRequest(f"window must be between {service.MIN_WINDOW} and "
                                     f"{service.MAX_WINDOW} seconds")
    except ServiceError as exc:
        return error_page(request, exc)
    stats = await run_in_threadpool(service.stats_view, d.app, d.read_only, window)
    return render(request, "overview.html", stats=stats, page="overview", window=window,
                  windows=WINDOWS)


async def queue_page(request: Request) -> Response:
    d = dashboard_of(request)
    try:
        queue = service.check_name(request.path_params["queue"])
        state = service.parse_state(request.query_params.get("state"))
        offset = _int(request, "offset")
        view = await run_in_threadpool(service.one_queue, d.app, queue)
        tasks = await run_in_threadpool(service.task_page, d.app, queue, state, PAGE_SIZE, offset)
    except ServiceError as exc:
        return error_page(request, exc)
    return render(request, "queue.html", queue=view, state=state.value if state else None,
                  tasks=tasks, page="overview")


async def tasks_page(request: Request) -> Response:
    d = dashboard_of(request)
    task_id = (request.query_params.get("id") or "").strip()
    try:
        if task_id:
            found = await run_in_threadpool(d.app.get, service.check_name(task_id, "task id"))
            if found is not None:
                return RedirectResponse(_url(request, f"/tasks/{quote(task_id, safe='')}"), 303)
            raise service.NotFound(f"no task with id {task_id!r}")
        queue = request.query_params.get("queue") or None
        state = service.parse_state(request.query_params.get("state"))
        tasks = await run_in_threadpool(service.task_page, d.app, queue, state, PAGE_SIZE,
                                        _int(request, "offset"))
    except ServiceError as exc:
        return error_page(request, exc)
    return render(request, "tasks.html", tasks=tasks, queue=queue,
                  state=state.value if state else None, page="tasks")


async def task_page(request: Request) -> Response:
    d = dashboard_of(request)
    try:
        info = await run_in_threadpool(service.get_task, d.app, request.path_params["task_id"])
    except ServiceError as exc:
        return error_page(request, exc)
    timeline = [
        ("created", info.created_at, None),
        ("scheduled", info.scheduled_at, None),
        ("started", info.started_at, _between("waited", info.scheduled_at, info.started_at)),
        ("completed", info.completed_at, _between("ran", info.started_at, info.completed_at)),
    ]
    return render(request, "task.html", task=info, timeline=timeline, page="tasks",
                  cancellable=info.state in WAITING_STATES,
                  deletable=info.state != TaskState.RUNNING,
                  error_chars=ATTEMPT_ERROR_CHARS,
                  requeueable=info.state in (TaskState.DEAD, TaskState.CANCELLED))


def _between(verb: str, start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None or end < start:
        return None
    return f"{verb} {duration((end - start).total_seconds())}"


async def dead_page(request: Request) -> Response:
    d = dashboard_of(request)
    try:
        queue = request.query_params.get("queue") or None
        tasks = await run_in_threadpool(service.task_page, d.app, queue, TaskState.DEAD,
                                        PAGE_SIZE, _int(request, "offset"))
        stats = await run_in_threadpool(service.stats_view, d.app, d.read_only)
    except ServiceError as exc:
        return error_page(request, exc)
    queues = [q for q in stats.queues if q.counts.get("DEAD")]
    return render(request, "dead.html", tasks=tasks, queue=queue, queues=queues, page="dead")


async def workers_page(request: Request) -> Response:
    d = dashboard_of(request)
    workers = await run_in_threadpool(lambda: service.workers_view(d.app.workers()))
    return render(request, "workers.html", workers=workers, page="workers")


async def schedules_page(request: Request) -> Response:
    d = dashboard_of(request)
    items = await run_in_threadpool(service.schedules, d.app)
    return render(request, "schedules.html", schedules=items, page="schedules")


# -- form posts ----------------------------------------------------------------------------------

Action = Callable[[Request, FormData], Awaitable[str]]
"""Does the work and returns the notice to show."""


def form_action(action: Action, default_next: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        d = dashboard_of(request)
        form = await request.form()
        try:
            if d.read_only:
                raise service.Forbidden("the dashboard is read-only")
            token = form.get(CSRF_FIELD)
            refusal = d.csrf.check(request, token if isinstance(token, str) else None)
            if refusal:
                raise service.Forbidden(refusal)
            notice = await action(request, form)
        except ServiceError as exc:
            return error_page(request, exc)
        target = _next(request, form, default_next)
        separator = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{separator}{urlencode({'notice': notice})}", 303)

    return endpoint


def _next(request: Request, form: FormData, default: str) -> str:
    """Back to the page the form was on, but only ever to a path of this dashboard."""
    base = request.scope.get("root_path", "")
    raw = form.get("next")
    if isinstance(raw, str) and raw.startswith(base + "/") and not raw.startswith("//") \
            and "\\" not in raw and "://" not in raw:
        return raw
    return _url(request, default)


def _url(request: Request, path: str) -> str:
    return f"{request.scope.get('root_path', '')}{path}"


def _ids(form: FormData) -> list[str]:
    return [value for value in form.getlist("ids") if isinstance(value, str) and value]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


async def _pause(request: Request, form: FormData) -> str:
    queue = request.path_params["queue"]
    await run_in_threadpool(service.pause, dashboard_of(request).app, queue)
    return f"Paused {queue}: workers claim nothing from it until it is resumed."


async def _resume(request: Request, form: FormData) -> str:
    queue = request.path_params["queue"]
    await run_in_threadpool(service.resume, dashboard_of(request).app, queue)
    return f"Resumed {queue}."


async def _purge_queue(request: Request, form: FormData) -> str:
    queue = request.path_params["queue"]
    raw = form.get("state")
    state = service.parse_state(raw if isinstance(raw, str) else None) or TaskState.DEAD
    result = await run_in_threadpool(service.purge, dashboard_of(request).app, queue, state)
    return f"Purged {_plural(result.count, state.value + ' task')} of {queue}."


async def _cancel_one(request: Request, form: FormData) -> str:
    result = await run_in_threadpool(service.cancel, dashboard_of(request).app,
                                     [request.path_params["task_id"]])
    return "Cancelled." if result.count else "Not cancelled: it is running or finished."


async def _requeue_one(request: Request, form: FormData) -> str:
    result = await run_in_threadpool(service.requeue, dashboard_of(request).app,
                                     [request.path_params["task_id"]])
    return "Requeued." if result.count else "Not requeued: only DEAD or CANCELLED tasks can be."


async def _delete_one(request: Request, form: FormData) -> str:
    task_id = request.path_params["task_id"]
    result = await run_in_threadpool(service.delete, dashboard_of(request).app, [task_id])
    return f"Deleted task {task_id}." if result.count else \
        "Not deleted: it is running (delete it once it has finished) or already gone."


async def _bulk(request: Request, form: FormData) -> str:
    app, ids = dashboard_of(request).app, _ids(form)
    action = form.get("action")
    if action == "requeue":
        result = await run_in_threadpool(service.requeue, app, ids)
        return f"Requeued {_plural(result.count, 'task')} of {len(ids)}."
    if action == "cancel":
        result = await run_in_threadpool(service.cancel, app, ids)
        return f"Cancelled {_plural(result.count, 'task')} of {len(ids)}."
    if action == "delete":
        result = await run_in_threadpool(service.delete, app, ids)
        kept = "" if result.count == len(ids) else " (running or already gone: kept)"
        return f"Deleted {_plural(result.count, 'task')} of {len(ids)}{kept}."
    raise service.BadRequest("action must be requeue, cancel or delete")


async def _requeue_dead(request: Request, form: FormData) -> str:
    app = dashboard_of(request).app
    queue = form.get("queue")
    queue = queue if isinstance(queue, str) and queue else None
    if form.get("all"):
        result = await run_in_threadpool(service.requeue_dead, app, queue)
    else:
        result = await run_in_threadpool(service.requeue, app, _ids(form))
    return f"Requeued {_plural(result.count, 'dead task')}."


async def _purge_dead(request: Request, form: FormData) -> str:
    queue = form.get("queue")
    queue = queue if isinstance(queue, str) and queue else None
    result = await run_in_threadpool(service.purge, dashboard_of(request).app, queue,
                                     TaskState.DEAD)
    return f"Purged {_plural(result.count, 'dead task')}."


async def _run_schedule(request: Request, form: FormData) -> str:
    result = await run_in_threadpool(service.run_schedule, dashboard_of(request).app,
                                     request.path_params["name"])
    return f"Enqueued one run: task {result.ids[0]}."


def routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/", overview, name="overview"),
        Route("/queues/{queue}", queue_page, name="queue"),
        Route("/tasks", tasks_page, name="tasks"),
        Route("/tasks/{task_id}", task_page, name="task"),
        Route("/dead", dead_page, name="dead"),
        Route("/workers", workers_page, name="workers"),
        Route("/schedules", schedules_page, name="schedules"),
        Route("/queues/{queue}/pause", form_action(_pause, "/"), methods=post),
        Route("/queues/{queue}/resume", form_action(_resume, "/"), methods=post),
        Route("/queues/{queue}/purge", form_action(_purge_queue, "/"), methods=post),
        Route("/tasks/bulk", form_action(_bulk, "/tasks"), methods=post),
        Route("/tasks/{task_id}/cancel", form_action(_cancel_one, "/tasks"), methods=post),
        Route("/tasks/{task_id}/requeue", form_action(_requeue_one, "/dead"), methods=post),
        Route("/tasks/{task_id}/delete", form_action(_delete_one, "/tasks"), methods=post),
        Route("/dead/requeue", form_action(_requeue_dead, "/dead"), methods=post),
        Route("/dead/purge", form_action(_purge_dead, "/dead"), methods=post),
        Route("/schedules/{name}/run", form_action(_run_schedule, "/schedules"), methods=post),
    ]


# -- template filters ----------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """Compact: 850 ms, 12.3 s, 4m 05s, 2h 10m."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=True)


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def rate(per_second: float) -> str:
    """Slow queues read better per minute (as the page's script shows them too)."""
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/min"


def pathpart(value: str) -> str:
    return quote(str(value), safe="")


FILTERS: dict[str, Callable[..., str]] = {
    "when": when, "duration": duration, "pretty": pretty, "percent": percent,
    "pathpart": pathpart, "rate": rate,
}
