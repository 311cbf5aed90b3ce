"""``conveyor queue list|pause|resume|purge``, and a live worker honouring a pause."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from conveyor import Conveyor
from conveyor.cli.main import cli
from helpers import wait_until

CLEAN_ENV: dict[str, str | None] = {"CONVEYOR_URL": None, "CONVEYOR_APP": None}


def run_ok(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=CLEAN_ENV)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_pause_list_resume_and_purge(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    app = Conveyor(url)

    @app.task(queue="email")
    def send(n: int) -> int:
        return n

    for n in range(3):
        send.enqueue(n)
    assert "paused queue 'email'" in run_ok("--url", url, "queue", "pause", "email", "idle").stdout
    listed = {q["queue"]: q for q in json.loads(run_ok("--url", url, "queue", "list",
                                                       "--json").stdout)}
    assert listed["email"]["paused"] and listed["email"]["counts"]["PENDING"] == 3
    assert listed["idle"]["paused"] and sum(listed["idle"]["counts"].values()) == 0
    table = run_ok("--url", url, "queue", "list").stdout
    assert "email" in table and "paused" in table
    run_ok("--url", url, "queue", "resume", "idle")
    assert app.paused_queues() == {"email"}
    purged = run_ok("--url", url, "queue", "purge", "email", "--state", "pending", "--yes")
    assert "purged 3 task(s)" in purged.stdout
    refused = CliRunner().invoke(cli, ["--url", url, "queue", "purge", "email"], env=CLEAN_ENV)
    assert refused.exit_code == 2
    app.close()


def test_a_running_worker_stops_taking_from_a_paused_queue(
    app: Conveyor, start_worker: Callable[..., object]
) -> None:
    ran: list[int] = []

    @app.task(queue="jobs")
    def job(n: int) -> None:
        ran.append(n)

    app.pause("jobs")
    start_worker(app, ["jobs"], concurrency=2)
    handles = [job.enqueue(n) for n in range(5)]
    wait_until(lambda: app.stats().queues["jobs"].count("PENDING") == 5)
    assert ran == []
    app.resume("jobs")
    wait_until(lambda: all(h.info().state == "DONE" for h in handles), timeout=10)  # type: ignore[union-attr]
    assert sorted(ran) == list(range(5))


def test_stats_report_the_utilization_of_a_busy_worker(
    app: Conveyor, start_worker: Callable[..., object]
) -> None:
    import threading

    release = threading.Event()

    @app.task(queue="slow")
    def hold() -> None:
        release.wait(30)

    start_worker(app, ["slow"], concurrency=4, heartbeat_interval=0.05)
    for _ in range(2):
        hold.enqueue()
    try:
        stats = wait_until(lambda: (s := app.stats()).busy_slots == 2 and s, timeout=15)
        assert stats.total_slots == 4 and stats.utilization == 0.5
        assert stats.queues["slow"].utilization == 0.5
        assert stats.queues["slow"].workers == 1
    finally:
        release.set()
