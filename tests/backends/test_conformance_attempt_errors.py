"""Every failed attempt's error, kept by Fail: the last ATTEMPT_ERRORS_KEPT of them, oldest
first, each with its attempt number, worker and end time, its text cut to ATTEMPT_ERROR_CHARS
(bytes on Redis, never splitting a character). ``error`` still holds the last one whole."""

from __future__ import annotations

import pytest

from backends.support import claim_one, complete, enqueue, fail, new_task, row
from conveyor import Conveyor, Retry
from conveyor.backends.base import ATTEMPT_ERROR_CHARS, ATTEMPT_ERRORS_KEPT, Backend, Requeue
from conveyor.inspect import task_info
from conveyor.model import AttemptError


def _history(backend: Backend, task_id: str) -> list[AttemptError]:
    return task_info(row(backend, task_id)).attempt_errors


def test_each_failed_attempt_is_kept_with_its_worker_and_end(backend: Backend, clock) -> None:
    [task_id] = enqueue(backend, new_task(max_retries=5))
    assert _history(backend, task_id) == []
    ends = []
    for attempt, worker in enumerate(["w-a", "w-b", "w-c"], start=1):
        clock.advance(1.5)
        task = claim_one(backend, worker=worker)
        clock.advance(0.25)
        ends.append(clock.now)
        retry = 0.0 if attempt < 3 else None
        assert fail(backend, task, retry, error=f"Traceback\nValueError: try {attempt}",
                    reason=None if retry is not None else "max_retries") == []
    history = _history(backend, task_id)
    assert [(a.attempt, a.worker, a.error) for a in history] == [
        (n, w, f"Traceback\nValueError: try {n}") for n, w in
        [(1, "w-a"), (2, "w-b"), (3, "w-c")]]
    assert [a.ended_at.timestamp() for a in history] == pytest.approx(ends, abs=1e-3)
    stored = row(backend, task_id)
    assert stored.state == "DEAD" and stored.error == "Traceback\nValueError: try 3"


def test_only_the_last_attempts_are_kept(backend: Backend) -> None:
    attempts = ATTEMPT_ERRORS_KEPT + 3
    [task_id] = enqueue(backend, new_task(max_retries=attempts))
    for n in range(1, attempts + 1):
        fail(backend, claim_one(backend), 0.0, error=f"error {n}")
    history = _history(backend, task_id)
    assert [a.attempt for a in history] == list(range(4, attempts + 1))
    assert history[-1].error == f"error {attempts}"


@pytest.mark.parametrize("unit", ["x", "é", "→"])
def test_a_long_error_is_cut_but_stays_readable(backend: Backend, unit: str) -> None:
    [task_id] = enqueue(backend, new_task())
    whole = unit * (ATTEMPT_ERROR_CHARS + 100)
    fail(backend, claim_one(backend), 0.0, error=whole)
    [kept] = _history(backend, task_id)
    assert whole.startswith(kept.error)
    assert ATTEMPT_ERROR_CHARS // 3 <= len(kept.error) <= ATTEMPT_ERROR_CHARS
    assert row(backend, task_id).error == whole  # the last error, whole


def test_success_and_requeue_keep_the_history(backend: Backend) -> None:
    [task_id] = enqueue(backend, new_task(max_retries=0))
    fail(backend, claim_one(backend), None, error="first", reason="max_retries")
    assert backend.execute(Requeue([task_id])) == [task_id]
    complete(backend, claim_one(backend))
    history = _history(backend, task_id)
    assert [(a.attempt, a.error) for a in history] == [(1, "first")]


def test_the_app_shows_the_attempts(app: Conveyor) -> None:
    @app.task(queue="default", max_retries=1, retry=Retry(base=0.0, jitter=False))
    def flaky() -> None:
        raise RuntimeError("still broken")

    handle = flaky.enqueue()
    app.run_until_idle(["default"], wait_scheduled=True, timeout=30)
    info = app.get(handle.id)
    assert info is not None and info.state == "DEAD"
    assert [a.attempt for a in info.attempt_errors] == [1, 2]
    assert all("RuntimeError: still broken" in a.error for a in info.attempt_errors)
    assert all(a.worker for a in info.attempt_errors)
