"""conveyor.testing: an isolated in-memory store and a fake clock for users' own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import Conveyor, Retry, TaskState
from conveyor.testing import FakeClock, isolated


def make_app(tmp_path: Path) -> tuple[Conveyor, list[str]]:
    app = Conveyor(f"sqlite:///{tmp_path / 'real.db'}")
    sent: list[str] = []

    @app.task
    def send(to: str) -> str:
        sent.append(to)
        return to

    @app.task(max_retries=2, retry=Retry.fixed(30.0))
    def flaky(to: str) -> str:
        if len(sent) < 2:
            sent.append("failed")
            raise ConnectionError("smtp down")
        return "ok"

    return app, sent


def test_isolated_runs_tasks_in_memory_and_restores_the_app(tmp_path: Path) -> None:
    app, sent = make_app(tmp_path)
    with isolated(app):
        handle = app.tasks[next(n for n in app.tasks if n.endswith("send"))].enqueue("a@x")
        app.run_until_idle()
        assert handle.result(timeout=1) == "a@x"
        assert sent == ["a@x"]
    assert app.url.endswith("real.db")
    assert app.stats().total(TaskState.DONE) == 0, "nothing reached the real store"


def test_fake_clock_drives_delays_and_retries(tmp_path: Path) -> None:
    app, _sent = make_app(tmp_path)
    send = app.tasks[next(n for n in app.tasks if n.endswith(".send"))]
    flaky = app.tasks[next(n for n in app.tasks if n.endswith(".flaky"))]
    clock = FakeClock(start=1_800_000_000.0)
    with isolated(app, clock=clock):
        later = send.options(delay=3600).enqueue("later@x")
        retried = flaky.enqueue("b@x")
        app.run_until_idle()
        assert later.info().state == TaskState.SCHEDULED
        assert retried.info().state == TaskState.FAILED
        clock.advance(30)
        app.run_until_idle()
        assert retried.info().state == TaskState.FAILED and retried.info().attempts == 2
        clock.advance(30)
        app.run_until_idle()
        assert retried.result(timeout=1) == "ok"
        assert later.info().state == TaskState.SCHEDULED
        clock.advance(3600)
        app.run_until_idle()
        assert later.result(timeout=1) == "later@x"


def test_fake_clock_never_runs_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().advance(-1)
