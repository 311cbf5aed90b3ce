"""The dashboard in headless Chromium (Debian's, driven by Playwright), served by the real
``conveyor dashboard`` command in a subprocess with basic auth on a free loopback port.

Screenshots go to ``tests/artifacts/`` for a human to look at.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from apps import dashboard_app
from conveyor import Conveyor
from dashboard.conftest import make_dead
from helpers import wait_until
from integration.conftest import RunningWorker
from redis_server import free_port

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CONVEYOR_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
T = TypeVar("T")
USER, PASSWORD = "ops", "correct horse battery staple"

sync_api = pytest.importorskip("playwright.sync_api")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/ensure-test-services.sh as root "
                "(it installs Debian's chromium)", allow_module_level=True)


def _answers(url: str) -> bool:
    request = urllib.request.Request(url, headers={
        "Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Conveyor, str]]:
    """The test app on a fresh SQLite file, and the base URL of a dashboard serving it."""
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    app = dashboard_app.app
    app.use(url)
    port = free_port()
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_DASHBOARD_USER": USER,
           "CONVEYOR_DASHBOARD_PASSWORD": PASSWORD}
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "dashboard", "apps.dashboard_app:app",
         "--host", "127.0.0.1", "--port", str(port), "--poll-seconds", "0.5",
         "--log-level", "warning"],
        cwd=Path(__file__).parents[1], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _answers(f"{base}/api/stats"),
                   timeout=30, message="the dashboard did not answer")
        assert process.poll() is None, process.communicate()[0]
        yield app, base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


EXPECTED_ERRORS: dict[str, str] = {
    "test_a_page_without_a_stream_falls_back_to_polling":
        "the server responded with a status of 503",  # the refused stream, on purpose
}


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 1360, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield opened
    context.close()
    expected = EXPECTED_ERRORS.get(request.node.originalname)
    errors = [e for e in errors if expected is None or expected not in e]
    assert errors == [], f"the page logged errors: {errors}"  # CSP violations included


def off_loop(function: Callable[..., T], *args: Any) -> T:
    """Playwright's sync API keeps an event loop running in this thread, and a burst worker
    runs its own: run such calls in another thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result(timeout=60)


def shoot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_served_dashboard_requires_its_credentials(served: tuple[Conveyor, str]) -> None:
    _, base = served
    for path in ("/", "/api/stats", "/static/dashboard.js"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}{path}", timeout=5)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Basic")
        refused.value.close()
    assert _answers(f"{base}/api/stats")


def test_the_overview_shows_a_queue_depth_change_after_an_enqueue(
    served: tuple[Conveyor, str], page: object
) -> None:
    app, base = served
    expect = sync_api.expect
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    depth = page.locator('.card[data-queue="email"] [data-field="depth"]')  # type: ignore[attr-defined]
    expect(depth).to_have_text("0")
    expect(page.locator('.card[data-queue="email"] [data-badge="no-workers"]')).to_be_visible()  # type: ignore[attr-defined]
    for n in range(3):
        dashboard_app.send.enqueue(f"user{n}@example.com")
    expect(depth).to_have_text("3", timeout=10_000)  # live: no reload
    expect(page.locator('[data-total="depth"]')).to_have_text("3")  # type: ignore[attr-defined]
    expect(page.locator('svg[data-chart="depth"] polyline').first).to_be_attached()  # type: ignore[attr-defined]
    dashboard_app.send.enqueue("late@example.com")
    expect(depth).to_have_text("4", timeout=10_000)
    shoot(page, "overview")
    off_loop(lambda: app.run_until_idle(["email"], timeout=20))  # a real worker drains it
    expect(depth).to_have_text("0", timeout=10_000)
    # Those changes came through the event stream, not polling: its handler counts them.
    expect(page.locator("body")).to_have_attribute("data-live", "sse")  # type: ignore[attr-defined]
    events = int(page.locator("body").get_attribute("data-sse-events"))  # type: ignore[attr-defined]
    assert events >= 4, events  # at least 0, 3, 4 and 0
    card = page.locator('.card[data-queue="email"]')  # type: ignore[attr-defined]
    expect(card.locator('[data-count="DONE"]')).to_have_text("4")
    expect(card.locator('[data-field="latency"]')).not_to_have_text("— / — / —")
    for chart in ("throughput", "latency"):  # drawn from the backend's per-minute series
        marks = page.locator(f'svg[data-chart="{chart}"] :is(polyline, circle)')  # type: ignore[attr-defined]
        expect(marks.first).to_be_attached()
        expect(page.locator(f'svg[data-chart="{chart}"] .nodata')).to_have_count(0)  # type: ignore[attr-defined]
    shoot(page, "overview-drained")


def test_a_page_without_a_stream_falls_back_to_polling(
    served: tuple[Conveyor, str], page: object
) -> None:
    """A refused stream (here: the browser's requests to it fail) leaves the page polling."""
    _, base = served
    expect = sync_api.expect
    page.route("**/api/events*", lambda route: route.fulfill(  # type: ignore[attr-defined]
        status=503, content_type="application/json", body='{"error": "busy", "status": 503}'))
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    depth = page.locator('.card[data-queue="email"] [data-field="depth"]')  # type: ignore[attr-defined]
    expect(page.locator("body")).to_have_attribute("data-live", "polling")  # type: ignore[attr-defined]
    dashboard_app.send.enqueue("polled@example.com")
    expect(depth).to_have_text("1", timeout=10_000)
    assert page.locator("body").get_attribute("data-sse-events") is None  # type: ignore[attr-defined]


def open_dlq_of_three(app: Conveyor, base: str, page: object) -> tuple[list[str], Any]:
    """Three dead tasks, and the DLQ page showing them: their ids and its task rows."""
    ids = off_loop(make_dead, app, 3)
    page.goto(f"{base}/dead")  # type: ignore[attr-defined]
    rows = page.locator("table.tasks tbody tr[data-task-id]")  # type: ignore[attr-defined]
    sync_api.expect(rows).to_have_count(3)
    return ids, rows


def test_a_dead_task_is_requeued_from_the_dlq_page(served: tuple[Conveyor, str],
                                                   page: object) -> None:
    app, base = served
    expect = sync_api.expect
    (first, second, third), rows = open_dlq_of_three(app, base, page)
    expect(page.get_by_text("mailbox of user0@example.com is full").first).to_be_visible()  # type: ignore[attr-defined]
    shoot(page, "dead-before")
    page.locator(f'tr[data-task-id="{first}"] button', has_text="Requeue").click()  # type: ignore[attr-defined]
    expect(page.locator(".notice")).to_have_text("Requeued.")  # type: ignore[attr-defined]
    expect(page.locator(f'tr[data-task-id="{first}"]')).to_have_count(0)  # type: ignore[attr-defined]
    assert app.get(first).state == "PENDING"  # type: ignore[union-attr]
    page.locator(f'tr[data-task-id="{second}"] input[name="ids"]').check()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Requeue selected").click()  # type: ignore[attr-defined]
    expect(page.locator(".notice")).to_have_text("Requeued 1 dead task.")  # type: ignore[attr-defined]
    expect(rows).to_have_count(1)
    assert app.get(second).state == "PENDING"  # type: ignore[union-attr]
    assert [t.id for t in app.dead()] == [third]
    shoot(page, "dead-after")


def test_delete_from_the_dlq_and_the_task_page_with_confirmation(
    served: tuple[Conveyor, str], page: object
) -> None:
    app, base = served
    expect = sync_api.expect
    (first, second, third), rows = open_dlq_of_three(app, base, page)
    page.locator(f'tr[data-task-id="{first}"] input[name="ids"]').check()  # type: ignore[attr-defined]
    page.locator(f'tr[data-task-id="{second}"] input[name="ids"]').check()  # type: ignore[attr-defined]
    page.once("dialog", lambda dialog: dialog.dismiss())  # type: ignore[attr-defined]
    page.get_by_role("button", name="Delete selected").click()  # type: ignore[attr-defined]
    expect(rows).to_have_count(3)  # dismissed: nothing was sent
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.get_by_role("button", name="Delete selected").click()  # type: ignore[attr-defined]
    expect(page.locator(".notice")).to_have_text("Deleted 2 tasks of 2.")  # type: ignore[attr-defined]
    expect(rows).to_have_count(1)
    assert app.get(first) is None and app.get(second) is None
    page.goto(f"{base}/tasks/{third}")  # type: ignore[attr-defined]
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.get_by_role("button", name="Delete").click()  # type: ignore[attr-defined]
    expect(page.locator(".notice")).to_have_text(f"Deleted task {third}.")  # type: ignore[attr-defined]
    expect(page.locator("h1")).to_contain_text("email")  # type: ignore[attr-defined]
    assert app.get(third) is None
    shoot(page, "deleted")


def test_pause_a_queue_and_purge_with_confirmation_then_tour_every_page(
    served: tuple[Conveyor, str], page: object
) -> None:
    app, base = served
    expect = sync_api.expect
    done = dashboard_app.build.enqueue("2026-11-24").id
    off_loop(lambda: app.run_until_idle(["reports"], timeout=20))
    [dead] = off_loop(make_dead, app, 1)
    for n in range(2):
        dashboard_app.send.options(priority=n).enqueue(f"<b>{n}</b>@example.com")
    page.goto(f"{base}/queues/email")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Pause").click()  # type: ignore[attr-defined]
    expect(page.locator("h1 .badge", has_text="paused")).to_be_visible()  # type: ignore[attr-defined]
    assert app.paused_queues() == {"email"}
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    expect(page.locator('.card[data-queue="email"] [data-badge="paused"]')).to_be_visible()  # type: ignore[attr-defined]
    page.goto(f"{base}/queues/email?state=PENDING")  # type: ignore[attr-defined]
    pending = page.locator('.tabs [data-count="PENDING"]')  # type: ignore[attr-defined]
    expect(pending).to_have_text("2")
    dashboard_app.send.enqueue("third@example.com")
    expect(pending).to_have_text("3", timeout=10_000)  # the queue page's numbers are live too
    expect(page.locator("body")).to_have_attribute("data-live", "sse")  # type: ignore[attr-defined]
    expect(page.locator('[data-live-queue] [data-field="depth"]')).to_have_text("3")  # type: ignore[attr-defined]
    page.reload()  # type: ignore[attr-defined]
    shoot(page, "queue")
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.get_by_role("button", name="Purge PENDING").click()  # type: ignore[attr-defined]
    expect(page.locator(".notice")).to_contain_text("Purged 3 PENDING tasks")  # type: ignore[attr-defined]
    assert app.list_tasks("email", "PENDING") == []
    page.goto(f"{base}/tasks/{dead}")  # type: ignore[attr-defined]
    expect(page.locator("pre.traceback")).to_contain_text("RuntimeError")  # type: ignore[attr-defined]
    shoot(page, "task-dead")
    page.goto(f"{base}/tasks/{done}")  # type: ignore[attr-defined]
    expect(page.locator("pre.code").last).to_contain_text('"status": "ok"')  # type: ignore[attr-defined]
    shoot(page, "task-done")
    for name in ("tasks", "schedules"):
        page.goto(f"{base}/{name}")  # type: ignore[attr-defined]
        expect(page.locator("h1")).to_be_visible()  # type: ignore[attr-defined]
        shoot(page, name)
    worker = RunningWorker(app.worker(["reports", "email"], concurrency=8)).start()
    try:
        page.goto(f"{base}/workers")  # type: ignore[attr-defined]
        expect(page.locator("table.workers tbody tr meter")).to_have_count(1)  # type: ignore[attr-defined]
        expect(page.locator("table.workers")).to_contain_text("0 / 8")  # type: ignore[attr-defined]
        shoot(page, "workers")
        page.goto(f"{base}/")  # type: ignore[attr-defined]
        expect(page.locator('[data-total="slots"]')).to_have_text("0 / 8 slots")  # type: ignore[attr-defined]
        expect(page.locator('.card[data-queue="email"] [data-badge="no-workers"]')).to_be_hidden()  # type: ignore[attr-defined]
        shoot(page, "overview-with-worker")
    finally:
        worker.stop()
