"""Transactional completion: a ``transactional=True`` task's writes and its DONE commit together,
or roll back together (task error, lost lease); other backends refuse to run such a task."""

from __future__ import annotations

import psycopg
import pytest

from conveyor import ConfigurationError, Conveyor, TaskState, current_task
from conveyor.backends.base import Claim, GetTasks, RecoverExpired
from conveyor.backends.postgres.backend import PostgresBackend
from conveyor.serialization import decode_result


def _effects(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return [(str(t), int(n)) for t, n in conn.execute(
            "SELECT task_id, n FROM effects ORDER BY n").fetchall()]


def test_writes_and_done_commit_together(pg_app: Conveyor, effects_table: str) -> None:
    @pg_app.task(queue="t", transactional=True)
    def charge(n: int) -> str:
        ctx = current_task()
        ctx.connection.execute("INSERT INTO effects VALUES (%s, %s, %s, 0)",
                               (ctx.id, n, ctx.attempt))
        return "charged"

    handles = charge.enqueue_many([((n,), {}) for n in range(5)])
    pg_app.run_until_idle(["t"], timeout=30)
    assert [h.result(timeout=5) for h in handles] == ["charged"] * 5
    assert _effects(effects_table) == [(h.id, n) for n, h in enumerate(handles)]
    assert all(h.info().attempts == 1 for h in handles)


def test_a_failing_task_rolls_its_writes_back(pg_app: Conveyor, effects_table: str) -> None:
    @pg_app.task(queue="t", transactional=True, max_retries=0)
    def boom(n: int) -> None:
        current_task().connection.execute("INSERT INTO effects VALUES ('x', %s, 1, 0)", (n,))
        raise RuntimeError("declined")

    handle = boom.enqueue(1)
    pg_app.run_until_idle(["t"], timeout=30)
    info = handle.info()
    assert info.state == TaskState.DEAD
    assert "declined" in (info.error or "")
    assert _effects(effects_table) == []


def test_a_lost_lease_rolls_the_writes_back(pg_url: str, effects_table: str) -> None:
    """The hook itself: another worker took the task over while it ran; nothing is kept."""
    backend = PostgresBackend(pg_url)
    app = Conveyor(pg_url)
    try:
        @app.task(queue="t", transactional=True)
        def work() -> None: ...

        handle = work.enqueue()
        [claimed] = backend.execute(Claim("w1", ["t"], 1, 0.01))

        def body(conn: psycopg.Connection) -> bytes | None:
            conn.execute("INSERT INTO effects VALUES (%s, 1, 1, 0)", (claimed.id,))
            # The lease runs out (server clock) and is recovered meanwhile, from another
            # connection: another worker may now run the task.
            conn.execute("SELECT pg_sleep(0.05)")
            assert backend.execute(RecoverExpired(max_worker_lost=10)).requeued == 1
            return None

        assert backend.run_transactional(claimed, body) is False
        assert _effects(effects_table) == []
        assert handle.info().state == TaskState.PENDING
    finally:
        app.close()
        backend.close()


def test_the_result_is_stored_with_the_completion(pg_app: Conveyor, effects_table: str) -> None:
    @pg_app.task(queue="t", transactional=True)
    def answer() -> dict[str, int]:
        return {"answer": 42}

    handle = answer.enqueue()
    pg_app.run_until_idle(["t"], timeout=30)
    info = handle.info()
    assert info.state == TaskState.DONE
    assert info.result == {"answer": 42}
    raw = pg_app.backend.execute(GetTasks([handle.id]))[0].result
    assert raw is not None and decode_result(raw) == {"answer": 42}


def test_registration_refuses_what_cannot_hold_the_connection(pg_app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="plain def"):
        @pg_app.task(transactional=True)
        async def in_a_loop() -> None: ...
    with pytest.raises(ConfigurationError, match="plain def"):
        @pg_app.task(transactional=True, executor="process")
        def in_a_process() -> None: ...


def test_another_backend_dead_letters_it_with_a_clear_error(tmp_path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        @app.task(queue="t", transactional=True)
        def charge() -> None: ...

        handle = charge.enqueue()
        app.run_until_idle(["t"], timeout=30)
        info = handle.info()
        assert (info.state, info.dead_reason) == (TaskState.DEAD, "not_retryable")
        assert "PostgreSQL" in (info.error or "")
    finally:
        app.close()
