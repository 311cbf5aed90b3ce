"""Transactional enqueue: tasks written inside the caller's open transaction exist once it
commits, and never if it rolls back; other backends refuse ``connection=``."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from conveyor import ConfigurationError, Conveyor, TaskState


def _tasks(app: Conveyor) -> list[str]:
    return [t.id for t in app.list_tasks()]


def test_commit_makes_the_task_exist_and_run(pg_app: Conveyor, conn: psycopg.Connection) -> None:
    @pg_app.task(queue="q")
    def add(a: int, b: int) -> int:
        return a + b

    conn.execute("CREATE TABLE orders (id int)")
    conn.execute("INSERT INTO orders VALUES (1)")
    handle = add.enqueue(1, 2, connection=conn)
    assert _tasks(pg_app) == [], "not visible before the caller commits"
    conn.commit()
    assert handle.info().state == TaskState.PENDING
    pg_app.run_until_idle(["q"], timeout=30)
    assert handle.result(timeout=5) == 3


def test_rollback_leaves_no_task(pg_app: Conveyor, conn: psycopg.Connection) -> None:
    @pg_app.task(queue="q")
    def noop(n: int) -> None: ...

    noop.options(priority=9).enqueue(1, connection=conn)
    noop.options(connection=conn).enqueue(2)
    noop.enqueue_many([((3,), {}), ((4,), {})], connection=conn)
    pg_app.enqueue(noop.name, (5,), connection=conn)
    conn.rollback()
    assert _tasks(pg_app) == []
    assert pg_app.stats().queues == {}


def test_the_enqueue_joins_the_callers_transaction(
    pg_app: Conveyor, conn: psycopg.Connection
) -> None:
    """Its rows are visible to the caller's later statements, before any commit."""

    @pg_app.task(queue="q")
    def noop() -> None: ...

    handles = noop.options(connection=conn).enqueue_many([((), {})] * 3)
    [(count,)] = conn.execute(
        "SELECT count(*) FROM conveyor_tasks WHERE id = ANY(%s)", ([h.id for h in handles],)
    ).fetchall()
    assert count == 3
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    conn.commit()
    assert len(_tasks(pg_app)) == 3


def test_async_enqueue_in_the_callers_transaction(pg_app: Conveyor, pg_url: str) -> None:
    @pg_app.task(queue="q")
    def noop(n: int) -> None: ...

    async def main() -> tuple[str, list[str]]:
        async with await psycopg.AsyncConnection.connect(pg_url) as aconn:
            kept = await noop.aenqueue(1, connection=aconn)
            await aconn.commit()
            await noop.aenqueue(2, connection=aconn)
            await noop.aenqueue_many([((3,), {})], connection=aconn)
            await aconn.rollback()
            return kept.id, _tasks(pg_app)

    kept, listed = asyncio.run(main())
    assert listed == [kept]


def test_a_sync_connection_in_async_code_is_refused(
    pg_app: Conveyor, conn: psycopg.Connection
) -> None:
    @pg_app.task(queue="q")
    def noop() -> None: ...

    with pytest.raises(ConfigurationError, match="AsyncConnection"):
        asyncio.run(noop.aenqueue(connection=conn))
    with pytest.raises(ConfigurationError, match="psycopg 3 Connection"):
        noop.enqueue(connection=object())


def test_other_backends_refuse_a_connection(tmp_path, conn: psycopg.Connection) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        @app.task
        def noop() -> None: ...

        with pytest.raises(ConfigurationError, match="PostgreSQL"):
            noop.enqueue(connection=conn)
        with pytest.raises(ConfigurationError, match="PostgreSQL"):
            asyncio.run(noop.aenqueue_many([((), {})], connection=conn))
        assert app.list_tasks() == []
    finally:
        app.close()
