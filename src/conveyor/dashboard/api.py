"""The JSON API and its OpenAPI document, from one table.

Each :class:`Endpoint` names its parameters, body and response types once; the routes are built
from the table and so is ``/api/openapi.json``, with schemas generated from the msgspec structs
of :mod:`conveyor.dashboard.models`. Parameters are parsed by the same declarations that
document them, so a value the document forbids is refused with a 400 and a JSON body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conveyor import __version__
from conveyor.dashboard import events, service
from conveyor.dashboard.context import Dashboard, dashboard_of, json_error, json_response
from conveyor.dashboard.models import (
    ActionResult,
    CsrfToken,
    DeadPurgeBody,
    DeadRequeueBody,
    Error,
    IdsBody,
    PurgeBody,
    QueueView,
    ScheduleView,
    StatsView,
    TaskPage,
    WorkersView,
)
from conveyor.dashboard.security import CSRF_HEADER
from conveyor.model import TaskInfo, TaskState

Handler = Callable[[Dashboard, dict[str, Any], Any], Any]
"""(dashboard, parsed parameters, decoded body) -> a struct; runs in a worker thread."""


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" or "path"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False

    def parse(self, raw: str | None) -> Any:
        if raw is None:
            if self.required:
                raise service.BadRequest(f"{self.name} is required")
            return self.schema.get("default")
        if self.schema.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise service.BadRequest(f"{self.name} must be an integer") from None
            low, high = self.schema.get("minimum"), self.schema.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                raise service.BadRequest(f"{self.name} must be between {low} and {high}")
            return value
        if "enum" in self.schema:
            return service.parse_state(raw) if raw else None
        if self.where == "path" or raw:
            service.check_name(raw, self.name)
        return raw or None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """Relative to the API root (``/api``)."""
    operation: str
    summary: str
    handler: Handler
    response: Any
    params: tuple[Param, ...] = ()
    body: type | None = None
    body_required: bool = False
    changes_state: bool = False
    statuses: tuple[int, ...] = field(default=(400,))


STATE_SCHEMA = {"type": "string", "enum": [s.value for s in TaskState]}
NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": service.MAX_NAME}
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": service.MAX_PAGE,
                                 "default": 50}, "Page size.")
OFFSET = Param("offset", "query", {"type": "integer", "minimum": 0, "maximum": 10_000_000,
                                   "default": 0}, "Tasks to skip.")
QUEUE_FILTER = Param("queue", "query", NAME_SCHEMA, "Only this queue.")
STATE_FILTER = Param("state", "query", STATE_SCHEMA, "Only tasks in this state.")
QUEUE = Param("queue", "path", NAME_SCHEMA, "Queue name.", required=True)
TASK_ID = Param("task_id", "path", NAME_SCHEMA, "Task id.", required=True)
WINDOW = Param("window", "query", {"type": "integer", "minimum": service.MIN_WINDOW,
                                   "maximum": service.MAX_WINDOW,
                                   "default": service.DEFAULT_WINDOW},
               "Seconds of history for counters, latencies and the per-minute series.")
SCHEDULE = Param("name", "path", NAME_SCHEMA, "Schedule name.", required=True)


def _stats(d: Dashboard, p: dict[str, Any], _: Any) -> StatsView:
    return service.stats_view(d.app, d.read_only, p["window"])


def _workers(d: Dashboard, p: dict[str, Any], _: Any) -> WorkersView:
    return service.workers_view(d.app.workers())


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/stats", "getStats", "Every queue's card and the worker fleet.",
             _stats, StatsView, (WINDOW,)),
    Endpoint("GET", "/queues/{queue}", "getQueue", "One queue's depth, counters and latency.",
             lambda d, p, _: service.one_queue(d.app, p["queue"], p["window"]), QueueView,
             (QUEUE, WINDOW),
             statuses=(400, 404)),
    Endpoint("GET", "/tasks", "listTasks", "Tasks, filtered by queue and state, paged.",
             lambda d, p, _: service.task_page(d.app, p["queue"], p["state"], p["limit"],
                                               p["offset"]),
             TaskPage, (QUEUE_FILTER, STATE_FILTER, LIMIT, OFFSET)),
    Endpoint("GET", "/tasks/{task_id}", "getTask", "Every field of one task.",
             lambda d, p, _: service.get_task(d.app, p["task_id"]), TaskInfo, (TASK_ID,),
             statuses=(400, 404)),
    Endpoint("GET", "/dead", "listDead", "The dead-letter queue across queues, oldest first.",
             lambda d, p, _: service.task_page(d.app, p["queue"], TaskState.DEAD, p["limit"],
                                               p["offset"]),
             TaskPage, (QUEUE_FILTER, LIMIT, OFFSET)),
    Endpoint("GET", "/workers", "listWorkers", "Live workers and their utilization.",
             _workers, WorkersView, statuses=()),
    Endpoint("GET", "/schedules", "listSchedules", "Cron schedules with next and last run.",
             lambda d, p, _: service.schedules(d.app), list[ScheduleView], statuses=()),
    Endpoint("GET", "/csrf", "getCsrfToken",
             "A CSRF token for POST calls (also sets the cookie it must match).",
             lambda d, p, _: None, CsrfToken, statuses=()),
    Endpoint("POST", "/tasks/cancel", "cancelTasks", "Cancel tasks that have not started.",
             lambda d, p, body: service.cancel(d.app, body.ids), ActionResult,
             body=IdsBody, body_required=True, changes_state=True),
    Endpoint("POST", "/tasks/requeue", "requeueTasks",
             "DEAD or CANCELLED tasks back to PENDING, attempts reset.",
             lambda d, p, body: service.requeue(d.app, body.ids), ActionResult,
             body=IdsBody, body_required=True, changes_state=True),
    Endpoint("POST", "/tasks/delete", "deleteTasks",
             "Delete tasks in any state but RUNNING (running ones are kept and left out of "
             "the reply's ids).",
             lambda d, p, body: service.delete(d.app, body.ids), ActionResult,
             body=IdsBody, body_required=True, changes_state=True),
    Endpoint("POST", "/tasks/{task_id}/cancel", "cancelTask", "Cancel one task.",
             lambda d, p, _: service.cancel(d.app, [p["task_id"]]), ActionResult, (TASK_ID,),
             changes_state=True),
    Endpoint("POST", "/tasks/{task_id}/requeue", "requeueTask", "Requeue one task.",
             lambda d, p, _: service.requeue(d.app, [p["task_id"]]), ActionResult, (TASK_ID,),
             changes_state=True),
    Endpoint("POST", "/tasks/{task_id}/delete", "deleteTask",
             "Delete one task unless it is RUNNING (count 0 then, or when it is unknown).",
             lambda d, p, _: service.delete(d.app, [p["task_id"]]), ActionResult, (TASK_ID,),
             changes_state=True),
    Endpoint("POST", "/queues/{queue}/pause", "pauseQueue",
             "Stop workers claiming from this queue (running tasks finish).",
             lambda d, p, _: service.pause(d.app, p["queue"]), ActionResult, (QUEUE,),
             changes_state=True),
    Endpoint("POST", "/queues/{queue}/resume", "resumeQueue", "Let workers claim again.",
             lambda d, p, _: service.resume(d.app, p["queue"]), ActionResult, (QUEUE,),
             changes_state=True),
    Endpoint("POST", "/queues/{queue}/purge", "purgeQueue",
             "Delete this queue's tasks in one state (DEAD unless given).",
             lambda d, p, body: service.purge(d.app, p["queue"], body.state), ActionResult,
             (QUEUE,), body=PurgeBody, changes_state=True),
    Endpoint("POST", "/dead/requeue", "requeueDead",
             "Requeue dead tasks by id, or all of them (of one queue).",
             lambda d, p, body: (service.requeue_dead(d.app, body.queue) if body.all
                                 else service.requeue(d.app, body.ids)),
             ActionResult, body=DeadRequeueBody, body_required=True, changes_state=True),
    Endpoint("POST", "/dead/purge", "purgeDead", "Delete dead tasks (of one queue, or all).",
             lambda d, p, body: service.purge(d.app, body.queue, TaskState.DEAD),
             ActionResult, body=DeadPurgeBody, changes_state=True),
    Endpoint("POST", "/schedules/{name}/run", "runSchedule",
             "Enqueue one run of a schedule now.",
             lambda d, p, _: service.run_schedule(d.app, p["name"]), ActionResult, (SCHEDULE,),
             statuses=(400, 404), changes_state=True),
)


def _endpoint(spec: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        dashboard = dashboard_of(request)
        try:
            params = {
                p.name: p.parse(request.path_params.get(p.name) if p.where == "path"
                                else request.query_params.get(p.name))
                for p in spec.params
            }
            if spec.changes_state:
                if dashboard.read_only:
                    raise service.Forbidden("the dashboard is read-only")
                refusal = dashboard.csrf.check(request, request.headers.get(CSRF_HEADER))
                if refusal:
                    raise service.Forbidden(refusal)
            body = await _body(request, spec)
            if spec.operation == "getCsrfToken":  # the one route that also sets a cookie
                token = dashboard.csrf.token_for(request)
                response = json_response(CsrfToken(token=token))
                dashboard.csrf.set_cookie(request, response, token)
                return response
            result = await run_in_threadpool(spec.handler, dashboard, params, body)
        except (service.BadRequest, service.NotFound, service.Forbidden) as exc:
            return json_error(exc.status, str(exc))
        return json_response(result)

    return endpoint


async def _body(request: Request, spec: Endpoint) -> Any:
    if spec.body is None:
        return None
    raw = await request.body()
    if not raw.strip():
        if spec.body_required:
            raise service.BadRequest("a JSON body is required")
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=spec.body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise service.BadRequest(f"bad JSON body: {exc}") from None


def routes() -> list[BaseRoute]:
    """Full paths (``/api/...``), not a Mount: ``root_path`` stays the dashboard's own prefix."""
    table: list[BaseRoute] = [Route(f"/api{spec.path}", _endpoint(spec), methods=[spec.method],
                                    name=spec.operation) for spec in ENDPOINTS]
    return [*table, Route(f"/api{EVENTS_PATH}", events_endpoint, methods=["GET"],
                          name=EVENTS_OPERATION),
            Route("/api/openapi.json", openapi_endpoint, methods=["GET"])]


EVENTS_PATH = "/events"
EVENTS_OPERATION = "streamEvents"


async def events_endpoint(request: Request) -> Response:
    """The live stream of the pages (see :mod:`conveyor.dashboard.events`). Not in the table:
    it answers an endless ``text/event-stream``, not one struct."""
    dashboard = dashboard_of(request)
    try:
        window = WINDOW.parse(request.query_params.get(WINDOW.name))
    except service.BadRequest as exc:
        return json_error(exc.status, str(exc))
    if not dashboard.streams.try_open():
        response = json_error(503, f"too many live streams (at most {dashboard.streams.limit}); "
                                   "poll GET /api/stats instead")
        response.headers["retry-after"] = "30"
        return response
    return events.event_stream(
        lambda: service.stats_view(dashboard.app, dashboard.read_only, window),
        dashboard.streams, dashboard.poll_seconds)


async def openapi_endpoint(request: Request) -> Response:
    return json_response(openapi_document(request.scope.get("root_path", "")))


REASONS = {400: "Bad input", 401: "Credentials required", 403: "Refused (CSRF, read-only)",
           404: "Not found", 503: "Too many live streams open; poll instead"}


def _events_operation(stats_ref: dict[str, Any], error_ref: dict[str, Any]) -> dict[str, Any]:
    errors = {str(status): {"description": REASONS[status], "content": {
        "application/json": {"schema": error_ref}}} for status in (400, 401, 503)}
    return {
        "operationId": EVENTS_OPERATION,
        "summary": "Live overview figures as server-sent events.",
        "description": (
            "An endless text/event-stream. Each `stats` event's data is the JSON of GET "
            "/api/stats (a StatsView), sent when the figures change (checked every poll "
            "interval; the first one at once). Comment lines keep idle connections open. "
            "The number of open streams is bounded: past it, 503 (poll GET /api/stats)."),
        "parameters": [{"name": WINDOW.name, "in": "query", "required": False,
                        "description": WINDOW.description, "schema": WINDOW.schema}],
        "responses": {
            "200": {"description": "The stream", "content": {"text/event-stream": {
                "schema": {"type": "string"},
                "x-event-data": stats_ref}}},
            **errors,
        },
    }


def openapi_document(root_path: str = "") -> dict[str, Any]:
    types: list[Any] = [Error] + [spec.response for spec in ENDPOINTS]
    types += [spec.body for spec in ENDPOINTS if spec.body is not None]
    refs, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}")
    ref_of = dict(zip(range(len(types)), refs, strict=True))
    error_ref = ref_of[0]
    paths: dict[str, dict[str, Any]] = {}
    for index, spec in enumerate(ENDPOINTS, start=1):
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {
                "schema": ref_of[index]}}},
        }
        statuses = {401, *spec.statuses} | ({400, 403} if spec.changes_state else set())
        for status in sorted(statuses):
            responses[str(status)] = {"description": REASONS[status], "content": {
                "application/json": {"schema": error_ref}}}
        operation: dict[str, Any] = {
            "operationId": spec.operation, "summary": spec.summary, "responses": responses,
            "parameters": [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "description": p.description, "schema": p.schema}
                for p in spec.params
            ],
        }
        if spec.body is not None:
            body_ref = refs[types.index(spec.body)]
            operation["requestBody"] = {"required": spec.body_required, "content": {
                "application/json": {"schema": body_ref}}}
        if spec.changes_state:
            operation["parameters"].append({
                "name": "X-CSRF-Token", "in": "header", "required": True,
                "description": "The token of GET /api/csrf; its cookie must be sent too.",
                "schema": {"type": "string"}})
        paths.setdefault(f"/api{spec.path}", {})[spec.method.lower()] = operation
    stats_ref = refs[types.index(StatsView)]
    paths[f"/api{EVENTS_PATH}"] = {"get": _events_operation(stats_ref, error_ref)}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Conveyor dashboard API", "version": __version__,
                 "description": "Read and operate a Conveyor task queue. Every POST needs the "
                                "CSRF token of GET /api/csrf in X-CSRF-Token, with its cookie."},
        "paths": paths,
        "components": {"schemas": components},
    }
    if root_path:
        document["servers"] = [{"url": root_path}]
    return document
