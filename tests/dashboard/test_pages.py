"""The server-rendered pages and the forms their buttons post, on SQLite."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from apps import dashboard_app
from conveyor import Conveyor
from conveyor.backends.base import Claim, Fail, Failure
from conveyor.dashboard import create_app
from dashboard.conftest import make_dead


def form_token(client: TestClient, path: str) -> str:
    """The CSRF token a page put in its forms (its cookie is now in the client's jar)."""
    html = client.get(path).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no form with a CSRF token on {path}"
    return match.group(1)


def submit(client: TestClient, path: str, target: str, **fields: str | list[str]) -> str:
    """Post a form of ``path`` to ``target`` like a browser and follow the redirect."""
    data = {"csrf_token": form_token(client, path), "next": path, **fields}
    response = client.post(target, data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(path)
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    return page.text


def test_overview_shows_a_card_per_queue_with_counts_and_badges(
    app: Conveyor, client: TestClient
) -> None:
    dashboard_app.send.enqueue("a@x")
    app.pause("reports")
    html = client.get("/").text
    assert 'data-queue="email"' in html and 'data-queue="reports"' in html
    email = html[html.index('data-queue="email"'):html.index('data-queue="reports"')]
    assert re.search(r'data-field="depth">1<', email)
    assert re.search(r'data-count="PENDING">1<', email)
    assert 'data-badge="paused" hidden' in email  # email runs
    reports = html[html.index('data-queue="reports"'):]
    assert 'data-badge="paused">' in reports  # shown
    assert 'data-badge="no-workers">' in reports  # no worker consumes it
    for chart in ("depth", "throughput", "latency"):
        assert f'data-chart="{chart}"' in html
    assert "/static/dashboard.js" in html and "<script>" not in html  # no inline script


def test_queue_page_tabs_filter_by_state(app: Conveyor, client: TestClient) -> None:
    pending = dashboard_app.send.enqueue("p@x").id
    dead = make_dead(app, 1)[0]
    dashboard_app.send.enqueue("q@x")
    all_tasks = client.get("/queues/email").text
    assert dead in all_tasks
    only_dead = client.get("/queues/email?state=DEAD").text
    assert dead in only_dead and pending not in only_dead
    assert "Purge DEAD" in only_dead
    assert client.get("/queues/nope").status_code == 404
    assert client.get("/queues/email?state=BOGUS").status_code == 400


def test_task_detail_shows_args_timeline_error_and_result(app: Conveyor,
                                                          client: TestClient) -> None:
    done = dashboard_app.build.enqueue("2026-11-24").id
    dead = make_dead(app, 1)[0]
    app.run_until_idle(["reports"], timeout=20)
    html = client.get(f"/tasks/{done}").text
    assert "2026-11-24" in html and "&#34;status&#34;: &#34;ok&#34;" in html
    assert html.count('class="done"') == 4  # created, scheduled, started, completed
    dead_html = client.get(f"/tasks/{dead}").text
    assert "Traceback" in dead_html and "mailbox of user0@example.com is full" in dead_html
    assert "max_retries" in dead_html and ">Requeue</button>" in dead_html
    assert client.get("/tasks/missing").status_code == 404


def test_task_search_by_id_redirects_and_lists_by_queue_and_state(
    app: Conveyor, client: TestClient
) -> None:
    task_id = dashboard_app.send.enqueue("s@x").id
    found = client.get("/tasks", params={"id": task_id}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == f"/tasks/{task_id}"
    assert client.get("/tasks", params={"id": "nope"}).status_code == 404
    listed = client.get("/tasks", params={"queue": "email", "state": "PENDING"}).text
    assert task_id in listed
    assert task_id not in client.get("/tasks", params={"queue": "reports"}).text


def test_arguments_and_errors_are_escaped(app: Conveyor, client: TestClient) -> None:
    evil = "<script>alert('pwned')</script>"
    task_id = dashboard_app.bounce.enqueue(evil).id
    app.run_until_idle(["email"], timeout=20)
    for path in (f"/tasks/{task_id}", "/dead", "/queues/email", "/tasks"):
        html = client.get(path).text
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(" in html, path


def test_dead_page_requeues_one_and_all_and_purges(app: Conveyor, client: TestClient) -> None:
    ids = make_dead(app, 3)
    html = client.get("/dead").text
    assert all(task_id in html for task_id in ids)
    after = submit(client, "/dead", f"/tasks/{ids[0]}/requeue")
    assert "Requeued." in after and ids[0] not in after.split("<tbody>")[1]
    after = submit(client, "/dead", "/dead/requeue", ids=[ids[1]])
    assert "Requeued 1 dead task" in after
    after = submit(client, "/dead", "/dead/requeue", all="1", queue="email")
    assert "Requeued 1 dead task" in after and "No tasks." in after
    make_dead(app, 1)
    after = submit(client, "/dead", "/dead/purge", queue="")
    assert "Purged" in after and "No tasks." in after


def test_queue_buttons_pause_resume_purge_and_bulk_cancel(app: Conveyor,
                                                          client: TestClient) -> None:
    ids = [dashboard_app.send.enqueue(f"{n}@x").id for n in range(3)]
    assert "Paused email" in submit(client, "/queues/email", "/queues/email/pause")
    assert app.paused_queues() == {"email"}
    assert "Resumed email" in submit(client, "/queues/email", "/queues/email/resume")
    after = submit(client, "/queues/email?state=PENDING", "/tasks/bulk", action="cancel",
                   ids=ids[:2])
    assert "Cancelled 2 tasks of 2" in after
    after = submit(client, "/queues/email?state=PENDING", "/queues/email/purge",
                   state="PENDING")
    assert "Purged 1 PENDING task of email" in after
    assert app.get(ids[2]) is None


def test_delete_from_the_task_page_goes_back_to_its_queue(app: Conveyor,
                                                         client: TestClient) -> None:
    task_id = dashboard_app.send.enqueue("gone@x").id
    html = client.get(f"/tasks/{task_id}").text
    assert f'action="/tasks/{task_id}/delete"' in html and "data-confirm" in html
    response = client.post(f"/tasks/{task_id}/delete", follow_redirects=False, data={
        "csrf_token": form_token(client, f"/tasks/{task_id}"), "next": "/queues/email"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/queues/email?notice=Deleted+task")
    assert app.get(task_id) is None
    assert client.get(f"/tasks/{task_id}").status_code == 404


def test_bulk_delete_from_the_dlq_the_task_list_and_a_queue_tab(app: Conveyor,
                                                                 client: TestClient) -> None:
    first, second, third = make_dead(app, 3)
    dead_page = client.get("/dead").text
    assert 'formaction="/tasks/bulk"' in dead_page and ">Delete selected<" in dead_page
    after = submit(client, "/dead", "/tasks/bulk", action="delete", ids=[first, second])
    assert "Deleted 2 tasks of 2." in after
    assert [t.id for t in app.dead()] == [third]
    pending = [dashboard_app.send.enqueue(f"{n}@x").id for n in range(2)]
    assert ">Delete selected<" in client.get("/tasks").text
    after = submit(client, "/tasks", "/tasks/bulk", action="delete", ids=[third, "unknown"])
    assert "Deleted 1 task of 2 (running or already gone: kept)." in after
    queue_tab = client.get("/queues/email?state=PENDING").text
    assert 'value="delete"' in queue_tab
    after = submit(client, "/queues/email?state=PENDING", "/tasks/bulk", action="delete",
                   ids=pending)
    assert "Deleted 2 tasks of 2." in after
    assert app.list_tasks("email") == []


def test_the_task_page_shows_every_failed_attempt(app: Conveyor, client: TestClient) -> None:
    task_id = dashboard_app.send.enqueue("flaky@x").id
    for n, retry in ((1, 0.0), (2, 0.0), (3, None)):
        [claimed] = app.backend.execute(Claim(f"worker-{n}", ["email"], 1, 30.0))
        app.backend.execute(Fail([Failure(claimed.id, claimed.lease_token,
                                          f"Traceback\nOSError: <try {n}>", retry,
                                          None if retry is not None else "max_retries")]))
    html = client.get(f"/tasks/{task_id}").text
    assert "Every failed attempt" in html
    attempts = re.findall(r'data-attempt="(\d+)"', html)
    assert attempts == ["3", "2", "1"]  # newest first
    assert "OSError: &lt;try 1&gt;" in html and "worker-2" in html  # escaped, as text
    api = client.get(f"/api/tasks/{task_id}").json()
    assert [(a["attempt"], a["worker"]) for a in api["attempt_errors"]] == [
        (1, "worker-1"), (2, "worker-2"), (3, "worker-3")]


def test_schedules_page_runs_one_now(app: Conveyor, client: TestClient) -> None:
    html = client.get("/schedules").text
    assert "nightly" in html and "0 3 * * *" in html
    after = submit(client, "/schedules", "/schedules/nightly/run")
    task_id = re.search(r"Enqueued one run: task (\S+)\.", after)
    assert task_id and app.get(task_id.group(1)) is not None


def test_workers_page_lists_workers(client: TestClient) -> None:
    assert "No live workers" in client.get("/workers").text


def test_a_redirect_never_leaves_the_dashboard(app: Conveyor, client: TestClient) -> None:
    token = form_token(client, "/queues/email")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post("/queues/email/pause", follow_redirects=False,
                               data={"csrf_token": token, "next": target})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/?notice=")


def test_read_only_hides_buttons_and_refuses_posts(app: Conveyor) -> None:
    make_dead(app, 1)
    with TestClient(create_app(app, read_only=True)) as client:
        html = client.get("/dead").text
        assert "read-only" in html and "Requeue" not in html and "<button" not in html
        token = client.get("/api/csrf").json()["token"]
        response = client.post("/dead/purge", data={"csrf_token": token})
        assert response.status_code == 403
        api = client.post("/api/dead/purge", json={}, headers={"X-CSRF-Token": token})
        assert api.status_code == 403 and "read-only" in api.json()["error"]
        [dead] = [t.id for t in app.dead()]
        for page in ("/tasks", f"/tasks/{dead}", "/queues/email?state=DEAD"):
            html = client.get(page).text
            assert ">Delete" not in html and "data-confirm" not in html
        response = client.post("/tasks/bulk", data={"csrf_token": token, "action": "delete",
                                                    "ids": [dead]})
        assert response.status_code == 403
        assert client.post(f"/tasks/{dead}/delete", data={"csrf_token": token}).status_code == 403
        for path, body in ((f"/api/tasks/{dead}/delete", None),
                           ("/api/tasks/delete", {"ids": [dead]})):
            api = client.post(path, json=body, headers={"X-CSRF-Token": token})
            assert api.status_code == 403
    assert len(app.dead()) == 1


def test_mounted_under_a_prefix_every_link_keeps_it(app: Conveyor) -> None:
    host = Starlette(routes=[Mount("/ops/conveyor", app=create_app(app))])
    dashboard_app.send.enqueue("m@x")
    with TestClient(host) as client:
        html = client.get("/ops/conveyor/").text
        links = re.findall(r'(?:href|src|action)="([^"]+)"', html)
        local = [link for link in links if link.startswith("/")]
        assert local and all(link.startswith("/ops/conveyor/") for link in local), local
        assert 'data-base="/ops/conveyor"' in html
        for link in set(local):
            if "static" in link or link.endswith("/tasks"):
                assert client.get(link).status_code == 200, link
        assert client.get("/ops/conveyor/api/stats").status_code == 200
        token = form_token(client, "/ops/conveyor/queues/email")
        response = client.post("/ops/conveyor/queues/email/pause", follow_redirects=False,
                               data={"csrf_token": token, "next": "/ops/conveyor/queues/email"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ops/conveyor/queues/email?notice=")
        document = client.get("/ops/conveyor/api/openapi.json").json()
        assert document["servers"] == [{"url": "/ops/conveyor"}]


@pytest.mark.parametrize("path", ["/", "/tasks", "/dead", "/workers", "/schedules",
                                  "/queues/email"])
def test_every_page_renders_on_an_empty_store(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "—" in response.text or "No " in response.text or "0" in response.text
