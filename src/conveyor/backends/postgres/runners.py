"""The two thin runners: drive a plan (``plans.py``) on a psycopg connection, sync or async.

They are the only code that differs between the two worlds, and they know nothing about any
transition. A transaction runs in pipeline mode with its own BEGIN and COMMIT statements: BEGIN
travels with the first step, COMMIT with the last, so a
transaction costs one round trip per step whose reply the plan reads. psycopg's
``transaction()`` block would sync after BEGIN and again after COMMIT, and leaving the pipeline
syncs once more: a transaction whose replies nobody reads took four round trips, not one. A
plan that streams rows with COPY is pipelined between its COPYs (see
``_drive_transaction_sync``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from conveyor.backends.postgres.plans import Plan, Reply, Statement

T = TypeVar("T")
NO_REPLY = Reply([], -1)

CHANGE_MARK_SQL = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
"""The next transaction id of the cluster: it moves whenever anyone commits a write, so a
waiter polls it (a read of shared memory) instead of the tables."""


def run_sync(conn: psycopg.Connection[Any], plan: Plan[T], *, transaction: bool) -> T:
    """Run ``plan`` on ``conn``: in a transaction of its own when asked, else on whatever the
    connection is in (autocommit for the pool's; the caller's open transaction for
    ``execute_on``).

    Outside a transaction each statement is atomic on its own and runs alone. A statement whose
    commit need not wait for its WAL flush says so itself (``set_config`` in its SQL: the
    claims); a pipeline with a ``SET LOCAL`` in front cost 0.2-0.3 ms more per round trip."""
    if transaction:
        return _drive_transaction_sync(conn, plan)
    return _drive_sync(conn, plan)


def _drive_transaction_sync(conn: psycopg.Connection[Any], plan: Plan[T]) -> T:
    """``plan`` in one transaction: the statements up to each step whose reply is read travel
    in one pipeline (BEGIN with the first, COMMIT with the last). A COPY, which pipeline mode
    cannot carry, runs between two pipelines: BEGIN, a step, a COPY, a step and COMMIT cost
    four round trips, not seven. On any error the transaction is rolled back here, so the
    connection goes back to its pool idle.

    Nothing is raised inside a pipeline block on purpose: psycopg only logs an error it meets
    while a block is left by an exception, and a failed COMMIT would pass for a success."""
    cursor = conn.cursor(row_factory=tuple_row)
    opening, done = ["BEGIN"], _Done[T]()
    try:
        statement = done.first(plan)
        while statement is not None:
            if statement.rows is not None:
                if opening:
                    with conn.pipeline():
                        for sql in opening:
                            conn.execute(sql)
                    opening = []
                with cursor.copy(statement.sql) as copy:
                    copy.set_types(statement.types)
                    for row in statement.rows:
                        copy.write_row(row)
                statement = done.send(plan, Reply([], cursor.rowcount))
                if statement is None:
                    conn.execute("COMMIT")
                continue
            with conn.pipeline():
                for sql in opening:
                    conn.execute(sql)
                opening = []
                while statement is not None and statement.rows is None:
                    cursor.execute(statement.sql, statement.params)
                    if statement.wait:
                        break
                    statement = done.send(plan, NO_REPLY)
                if statement is None:
                    conn.execute("COMMIT")
            if statement is not None and statement.rows is None:  # its reply is read: here
                rows = cursor.fetchall() if cursor.description is not None else []
                statement = done.send(plan, Reply(rows, cursor.rowcount))
                if statement is None:
                    conn.execute("COMMIT")
        return done.value
    except BaseException:
        if not opening and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    finally:
        cursor.close()


class _Done(Generic[T]):
    """Steps a plan and keeps what it returns: the drivers above test for None, not catch
    StopIteration, so that none is raised inside a pipeline block."""

    def __init__(self) -> None:
        self._value: list[T] = []

    def first(self, plan: Plan[T]) -> Statement | None:
        try:
            return next(plan)
        except StopIteration as stop:
            self._value.append(stop.value)
            return None

    def send(self, plan: Plan[T], reply: Reply) -> Statement | None:
        try:
            return plan.send(reply)
        except StopIteration as stop:
            self._value.append(stop.value)
            return None

    @property
    def value(self) -> T:
        return self._value[0]


def _drive_sync(conn: psycopg.Connection[Any], plan: Plan[T]) -> T:
    """Statement after statement, on whatever the connection is in (autocommit, or the
    caller's open transaction)."""
    cursor = conn.cursor(row_factory=tuple_row)
    try:
        statement = next(plan)
        while True:
            cursor.execute(statement.sql, statement.params)
            rows = cursor.fetchall() if cursor.description is not None else []
            statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        cursor.close()


async def run_async(conn: psycopg.AsyncConnection[Any], plan: Plan[T], *, transaction: bool
                    ) -> T:
    """The same as :func:`run_sync`, awaiting each round trip."""
    if transaction:
        return await _drive_transaction_async(conn, plan)
    return await _drive_async(conn, plan)


async def _drive_transaction_async(conn: psycopg.AsyncConnection[Any], plan: Plan[T]) -> T:
    """:func:`_drive_transaction_sync`, awaiting each round trip."""
    cursor = conn.cursor(row_factory=tuple_row)
    opening, done = ["BEGIN"], _Done[T]()
    try:
        statement = done.first(plan)
        while statement is not None:
            if statement.rows is not None:
                if opening:
                    async with conn.pipeline():
                        for sql in opening:
                            await conn.execute(sql)
                    opening = []
                async with cursor.copy(statement.sql) as copy:
                    copy.set_types(statement.types)
                    for row in statement.rows:
                        await copy.write_row(row)
                statement = done.send(plan, Reply([], cursor.rowcount))
                if statement is None:
                    await conn.execute("COMMIT")
                continue
            async with conn.pipeline():
                for sql in opening:
                    await conn.execute(sql)
                opening = []
                while statement is not None and statement.rows is None:
                    await cursor.execute(statement.sql, statement.params)
                    if statement.wait:
                        break
                    statement = done.send(plan, NO_REPLY)
                if statement is None:
                    await conn.execute("COMMIT")
            if statement is not None and statement.rows is None:
                rows = await cursor.fetchall() if cursor.description is not None else []
                statement = done.send(plan, Reply(rows, cursor.rowcount))
                if statement is None:
                    await conn.execute("COMMIT")
        return done.value
    except BaseException:
        if not opening and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ROLLBACK")
        raise
    finally:
        await cursor.close()


async def _drive_async(conn: psycopg.AsyncConnection[Any], plan: Plan[T]) -> T:
    cursor = conn.cursor(row_factory=tuple_row)
    try:
        statement = next(plan)
        while True:
            await cursor.execute(statement.sql, statement.params)
            rows = await cursor.fetchall() if cursor.description is not None else []
            statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        await cursor.close()
