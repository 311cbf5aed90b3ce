"""``conveyor worker --processes N``: real child processes, real signals, real SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, TaskState
from conveyor.worker.supervisor import Supervisor
from helpers import wait_until

TESTS_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'supervisor.db'}"


@pytest.fixture
def reader(url: str) -> Iterator[Conveyor]:
    app = Conveyor(url)
    yield app
    app.close()


def start(url: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", "worker", "apps.basic:app", *args],
        env={**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(TESTS_DIR)},
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def live_pids(reader: Conveyor) -> set[int]:
    return {w.pid for w in reader.workers()}


@pytest.mark.slow
def test_killed_child_is_restarted_and_sigterm_stops_all(
    tmp_path: Path, url: str, reader: Conveyor
) -> None:
    proc = start(url, tmp_path, "--processes", "2", "--concurrency", "2")
    try:
        first = wait_until(lambda: len(live_pids(reader)) == 2 and live_pids(reader),
                           timeout=20, message="two children registered")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replacement = wait_until(lambda: live_pids(reader) - first, timeout=20,
                                 message="a restarted child registered")
        assert victim not in replacement
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"(pid {victim}) exited unexpectedly with signal SIGKILL" in stderr
    assert f"restarted (pid {min(replacement)})" in stderr
    assert stderr.count("exited with code 0") == 2
    assert "Traceback" not in stderr


def test_burst_children_drain_the_queue_and_exit(
    tmp_path: Path, url: str, reader: Conveyor
) -> None:
    from apps.basic import app

    original = app.url
    app.use(url)
    try:
        handles = app.tasks["apps.basic.add"].enqueue_many([((n, n), {}) for n in range(40)])
    finally:
        app.use(original)
    proc = start(url, tmp_path, "--processes", "2", "--burst", "--concurrency", "4")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stderr.count("finished: no task left (burst)") == 2
    infos = [reader.get(h.id) for h in handles]
    assert all(i is not None and i.state == TaskState.DONE for i in infos)


def test_unimportable_app_fails_before_any_child_starts(tmp_path: Path, url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", "worker", "apps.missing:app", "--processes", "3"],
        env={**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(TESTS_DIR)},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "child" not in proc.stderr and proc.stderr.startswith("error: ")


# -- the restart policy, with tiny stand-in children ---------------------------------------------


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_burst_exit_zero_is_not_restarted() -> None:
    supervisor = Supervisor(python("raise SystemExit(0)"), 3, burst=True)
    assert supervisor.run() == 0
    assert all(c.finished for c in supervisor.children)


def test_usage_error_in_a_child_is_not_restarted() -> None:
    supervisor = Supervisor(python("raise SystemExit(2)"), 2, backoff=0.01)
    assert supervisor.run() == 2


def test_crash_loop_is_restarted_with_backoff_until_stopped(tmp_path: Path) -> None:
    """Restarts keep coming (the supervisor's job) but spaced out (no spinning)."""
    marks = tmp_path / "starts"
    supervisor = Supervisor(
        python(f"open({str(marks)!r}, 'a').write('x'); raise SystemExit(1)"),
        1, backoff=0.05, max_backoff=0.2,
    )

    def stop_after_restarts() -> None:
        wait_until(lambda: marks.exists() and len(marks.read_text()) >= 4, timeout=20)
        supervisor.request_stop()

    stopper = threading.Thread(target=stop_after_restarts)
    stopper.start()
    assert supervisor.run() == 1  # the last child exited 1
    stopper.join()
    assert supervisor.children[0].quick_deaths >= 3
    assert supervisor._backoff(supervisor.children[0], 0.0) == 0.2  # capped
