"""The JSON API: every route on SQLite, bad input as 4xx JSON, and a smoke run on Redis and
PostgreSQL through the same routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from apps import dashboard_app
from conveyor import Conveyor
from conveyor.dashboard import create_app
from conveyor.dashboard.api import ENDPOINTS
from dashboard.conftest import csrf_token, make_dead, post_json
from helpers import wait_until
from integration.conftest import RunningWorker
from postgres_server import fresh_url as fresh_postgres_url
from redis_server import fresh_url as fresh_redis_url


def test_stats_lists_declared_queues_and_counts_enqueued_tasks(
    app: Conveyor, client: TestClient
) -> None:
    empty = client.get("/api/stats").json()
    assert {q["queue"] for q in empty["queues"]} == {"email", "reports", "slow"}
    assert all(q["depth"] == 0 and q["workers"] == 0 for q in empty["queues"])
    assert empty["workers"] == {"workers": [], "busy_slots": 0, "total_slots": 0,
                                "utilization": 0.0}
    dashboard_app.send.enqueue("a@example.com")
    dashboard_app.send.options(delay=3600).enqueue("b@example.com")
    email = client.get("/api/queues/email").json()
    assert email["counts"]["PENDING"] == 1 and email["counts"]["SCHEDULED"] == 1
    assert email["depth"] == 2 and email["running"] == 0 and email["paused"] is False
    assert email["latency"]["count"] == 0 and email["latency"]["p99"] is None


def test_task_listing_filters_and_pages(app: Conveyor, client: TestClient) -> None:
    ids = [dashboard_app.send.enqueue(f"u{n}@x").id for n in range(5)]
    dashboard_app.build.enqueue("2026-11-24")
    page = client.get("/api/tasks", params={"queue": "email", "state": "PENDING",
                                            "limit": 2}).json()
    assert [t["id"] for t in page["tasks"]] == ids[:2]
    assert page["next_offset"] == 2
    last = client.get("/api/tasks", params={"queue": "email", "limit": 2, "offset": 4}).json()
    assert [t["id"] for t in last["tasks"]] == ids[4:] and last["next_offset"] is None
    everything = client.get("/api/tasks", params={"state": "pending"}).json()
    assert len(everything["tasks"]) == 6
    one = client.get(f"/api/tasks/{ids[0]}").json()
    assert one["args"] == ["u0@x"] and one["state"] == "PENDING" and one["queue"] == "email"


@pytest.mark.parametrize(("path", "params"), [
    ("/api/tasks", {"state": "SLEEPING"}),
    ("/api/tasks", {"limit": "0"}),
    ("/api/tasks", {"limit": "100000"}),
    ("/api/tasks", {"offset": "-1"}),
    ("/api/tasks", {"limit": "ten"}),
    ("/api/dead", {"limit": "abc"}),
])
def test_bad_query_parameters_are_400_with_a_json_reason(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == 400 and response.json()["error"]


def test_unknown_ids_queues_schedules_and_paths_are_json_404s(client: TestClient) -> None:
    for path in ("/api/tasks/no-such-task", "/api/queues/no-such-queue", "/api/nothing-here"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404
    token = csrf_token(client)
    response = client.post("/api/schedules/nope/run", headers={"X-CSRF-Token": token})
    assert response.status_code == 404


def test_dead_letters_requeue_by_id_and_all_then_purge(app: Conveyor, client: TestClient) -> None:
    dead = make_dead(app, 3)
    listed = client.get("/api/dead").json()
    assert [t["id"] for t in listed["tasks"]] == dead
    assert "mailbox of user0@example.com is full" in listed["tasks"][0]["error"]
    assert listed["tasks"][0]["dead_reason"] == "max_retries"
    one = post_json(client, "/api/dead/requeue", {"ids": [dead[0]]})
    assert one["count"] == 1 and one["ids"] == [dead[0]]
    assert app.get(dead[0]).state == "PENDING"  # type: ignore[union-attr]
    rest = post_json(client, "/api/dead/requeue", {"all": True, "queue": "email"})
    assert rest["count"] == 2
    assert client.get("/api/dead").json()["tasks"] == []
    make_dead(app, 2)
    purged = post_json(client, "/api/dead/purge", {"queue": None})
    assert purged["count"] >= 2
    assert client.get("/api/dead").json()["tasks"] == []


def test_single_and_bulk_cancel_and_requeue(app: Conveyor, client: TestClient) -> None:
    first, second = (dashboard_app.send.enqueue(f"{n}@x").id for n in range(2))
    assert post_json(client, f"/api/tasks/{first}/cancel")["count"] == 1
    assert app.get(first).state == "CANCELLED"  # type: ignore[union-attr]
    bulk = post_json(client, "/api/tasks/cancel", {"ids": [first, second]})
    assert bulk["ids"] == [second]  # the first is already cancelled
    assert post_json(client, "/api/tasks/requeue", {"ids": [first, second]})["count"] == 2
    assert post_json(client, f"/api/tasks/{first}/requeue")["count"] == 0  # PENDING now
    response = client.post("/api/tasks/cancel", json={"ids": []},
                           headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 400


def test_single_and_bulk_delete_keep_running_tasks(
    app: Conveyor, client: TestClient, tmp_path: Path,
    start_worker: Callable[..., RunningWorker],
) -> None:
    pending = dashboard_app.send.enqueue("p@x").id
    [dead] = make_dead(app, 1)
    done = dashboard_app.build.enqueue("2026-11-24").id
    app.run_until_idle(["reports"], timeout=20)
    release = tmp_path / "release"
    worker = start_worker(app, ["slow"], concurrency=1)
    running = dashboard_app.hold.enqueue(str(release)).id
    try:
        wait_until(lambda: app.get(running).state == "RUNNING", timeout=30)  # type: ignore[union-attr]
        assert post_json(client, f"/api/tasks/{pending}/delete") == {
            "action": "delete", "count": 1, "ids": [pending], "queue": None}
        assert client.get(f"/api/tasks/{pending}").status_code == 404
        bulk = post_json(client, "/api/tasks/delete", {"ids": [dead, running, done, "nope"]})
        assert bulk["ids"] == [dead, done]  # the running one is kept
        assert post_json(client, f"/api/tasks/{running}/delete")["count"] == 0
        assert app.get(running).state == "RUNNING"  # type: ignore[union-attr]
        assert client.get("/api/dead").json()["tasks"] == []
    finally:
        release.touch()
    worker.stop()
    assert post_json(client, f"/api/tasks/{running}/delete")["count"] == 1  # finished now
    response = client.post("/api/tasks/delete", json={"ids": []},
                           headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 400
    assert client.post("/api/tasks/delete", json={"ids": ["x"]}).status_code == 403  # no token


def test_pause_resume_and_purge_a_queue(app: Conveyor, client: TestClient) -> None:
    for n in range(3):
        dashboard_app.send.enqueue(f"{n}@x")
    post_json(client, "/api/queues/email/pause")
    assert client.get("/api/queues/email").json()["paused"] is True
    assert "email" in app.paused_queues()
    app.run_until_idle(["email"], timeout=5)  # a paused queue is not claimed
    assert client.get("/api/queues/email").json()["counts"]["PENDING"] == 3
    post_json(client, "/api/queues/email/resume")
    assert client.get("/api/queues/email").json()["paused"] is False
    purged = post_json(client, "/api/queues/email/purge", {"state": "PENDING"})
    assert purged["count"] == 3
    token = csrf_token(client)
    running = client.post("/api/queues/email/purge", json={"state": "RUNNING"},
                          headers={"X-CSRF-Token": token})
    assert running.status_code == 400
    bad = client.post("/api/queues/email/purge", json={"state": "ASLEEP"},
                      headers={"X-CSRF-Token": token})
    assert bad.status_code == 400


def test_schedules_show_next_run_and_run_now_enqueues_one(app: Conveyor,
                                                          client: TestClient) -> None:
    [nightly] = client.get("/api/schedules").json()
    assert nightly["name"] == "nightly" and nightly["cron"] == "0 3 * * *"
    assert nightly["next_run"].endswith("T03:00:00Z") and nightly["last_run"] is None
    run = post_json(client, "/api/schedules/nightly/run")
    task = app.get(run["ids"][0])
    assert task is not None and task.queue == "reports" and task.state == "PENDING"


def test_workers_show_utilization_of_a_live_worker(
    app: Conveyor, client: TestClient, start_worker: Callable[..., RunningWorker]
) -> None:
    worker = start_worker(app, ["email"], concurrency=4)
    listed = wait_until(lambda: client.get("/api/workers").json()["workers"])
    assert listed[0]["concurrency"] == 4 and listed[0]["queues"] == ["email"]
    assert 0.0 <= listed[0]["utilization"] <= 1.0
    assert client.get("/api/queues/email").json()["workers"] == 1
    worker.stop()


def test_a_busy_slot_shows_as_utilization(app: Conveyor, client: TestClient, tmp_path: Path,
                                          start_worker: Callable[..., RunningWorker]) -> None:
    release = tmp_path / "release"
    worker = start_worker(app, ["slow"], concurrency=2)
    dashboard_app.hold.enqueue(str(release))
    try:
        busy = wait_until(lambda: client.get("/api/workers").json()["busy_slots"] == 1 and
                          client.get("/api/workers").json(), timeout=30)
        assert busy["utilization"] == 0.5 and busy["workers"][0]["utilization"] == 0.5
        assert client.get("/api/queues/slow").json()["running"] == 1
    finally:
        release.touch()
    worker.stop()


def test_the_openapi_document_describes_every_route(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    # The table's routes, and the event stream (documented beside it; see test_events.py).
    assert operations == {(e.method, f"/api{e.path}") for e in ENDPOINTS} | {
        ("GET", "/api/events")}
    assert "TaskInfo" in document["components"]["schemas"]
    assert "QueueView" in document["components"]["schemas"]


@pytest.fixture(params=["redis", "postgres"])
def other_backend_client(request: pytest.FixtureRequest) -> Iterator[tuple[Conveyor, TestClient]]:
    url = fresh_redis_url() if request.param == "redis" else fresh_postgres_url()
    application = dashboard_app.app
    application.use(url)
    try:
        with TestClient(create_app(application)) as test_client:
            yield application, test_client
    finally:
        application.close()


def test_api_smoke_on_redis_and_postgres(
    other_backend_client: tuple[Conveyor, TestClient],
) -> None:
    app, client = other_backend_client
    task_id = dashboard_app.send.enqueue("a@example.com").id
    assert client.get("/api/queues/email").json()["counts"]["PENDING"] == 1
    assert client.get(f"/api/tasks/{task_id}").json()["state"] == "PENDING"
    dead = make_dead(app, 1)
    assert [t["id"] for t in client.get("/api/dead").json()["tasks"]] == dead
    assert post_json(client, "/api/dead/requeue", {"ids": dead})["count"] == 1
    post_json(client, "/api/queues/reports/pause")
    assert client.get("/api/queues/reports").json()["paused"] is True
    post_json(client, "/api/queues/reports/resume")
    assert client.get("/api/schedules").json()[0]["name"] == "nightly"
    for path in ("/", "/dead", "/workers", "/schedules", f"/tasks/{task_id}",
                 "/queues/email"):
        assert client.get(path).status_code == 200, path
