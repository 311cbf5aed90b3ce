"""The two thin runners: drive a plan (``plans.py``) on a psycopg connection, sync or async.

They are the only code that differs between the two worlds, and they know nothing about any
transition. A transaction of several statements runs in pipeline mode: BEGIN (and the durable
``SET LOCAL``) travel with the first statement, COMMIT with the last sync, so a transaction
costs one round trip per dependent step plus one (a step whose reply nobody reads travels with
the next one). A plan that streams rows with COPY (``streams``) is pipelined between its
COPYs (see ``_drive_streaming_sync``).
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from conveyor.backends.postgres.plans import Plan, Reply

T = TypeVar("T")
NO_REPLY = Reply([], -1)

DURABLE_SQL = "SET LOCAL synchronous_commit = on"
"""Enqueue returns only once its commit is flushed, whatever the session or role's setting."""
RELAXED_SQL = "SET LOCAL synchronous_commit = off"
"""A claim need not wait for its WAL flush: if a crash loses it, its tasks are simply still
PENDING (they were never started), so at-least-once holds; the flush is off the pickup path.
Also valid in a pipeline's implicit transaction (the statements up to a sync)."""
CHANGE_MARK_SQL = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
"""The next transaction id of the cluster: it moves whenever anyone commits a write, so a
waiter polls it (a read of shared memory) instead of the tables."""


def run_sync(
    conn: psycopg.Connection[Any], plan: Plan[T], *, transaction: bool, durable: bool,
    relaxed: bool = False, streams: bool = False,
) -> T:
    """Run ``plan`` on ``conn``: in a transaction of its own when asked, else on whatever the
    connection is in (autocommit for the pool's; the caller's open transaction for
    ``execute_on``).

    ``relaxed`` without ``transaction``: every statement is atomic on its own, so the plan runs
    in pipeline mode with no BEGIN/COMMIT, one short pipeline per step whose reply is read;
    what travels together up to the sync that ends it forms one implicit transaction, committed
    without waiting for the WAL flush. A claim then costs one round trip (leaving a pipeline
    sends a sync of its own, so one held open across steps would cost one more)."""
    if streams:
        return _drive_streaming_sync(conn, plan, _setting(durable, relaxed))
    if transaction:
        with conn.pipeline() as pipeline, conn.transaction():
            if durable or relaxed:
                conn.execute(DURABLE_SQL if durable else RELAXED_SQL)
            return _drive_sync(conn, plan, pipeline)
    if relaxed:
        return _drive_relaxed_sync(conn, plan)
    return _drive_sync(conn, plan)


def _drive_relaxed_sync(conn: psycopg.Connection[Any], plan: Plan[T]) -> T:
    cursor = conn.cursor(row_factory=tuple_row)
    try:
        statement = next(plan)
        while True:
            with conn.pipeline():
                conn.execute(RELAXED_SQL)
                while not statement.wait:
                    cursor.execute(statement.sql, statement.params)
                    statement = plan.send(NO_REPLY)
                cursor.execute(statement.sql, statement.params)
            rows = cursor.fetchall() if cursor.description is not None else []
            statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        cursor.close()


def _setting(durable: bool, relaxed: bool) -> list[str]:
    return [DURABLE_SQL] if durable else [RELAXED_SQL] if relaxed else []


def _drive_streaming_sync(conn: psycopg.Connection[Any], plan: Plan[T], setting: list[str]) -> T:
    """A transaction whose plan streams rows with COPY, which pipeline mode cannot carry: the
    statements between two COPYs travel in one pipeline each (BEGIN with the first, COMMIT with
    the last), so BEGIN, a step, a COPY, a step and COMMIT cost four round trips, not seven."""
    cursor = conn.cursor(row_factory=tuple_row)
    opening, committed = ["BEGIN", *setting], False
    try:
        statement = next(plan)
        while True:
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
                statement = plan.send(Reply([], cursor.rowcount))
                continue
            with conn.pipeline():
                for sql in opening:
                    conn.execute(sql)
                opening = []
                while not statement.wait:
                    cursor.execute(statement.sql, statement.params)
                    try:
                        statement = plan.send(NO_REPLY)
                    except StopIteration:
                        conn.execute("COMMIT")
                        committed = True
                        raise
                    if statement.rows is not None:
                        break
                else:
                    cursor.execute(statement.sql, statement.params)
            if statement.rows is None:  # a step whose reply the plan reads: it came back
                rows = cursor.fetchall() if cursor.description is not None else []
                statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        if not committed:
            conn.execute("COMMIT")
        return done.value  # type: ignore[no-any-return]
    except BaseException:
        if not opening and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    finally:
        cursor.close()


def _drive_sync(
    conn: psycopg.Connection[Any], plan: Plan[T], pipeline: psycopg.Pipeline | None = None,
) -> T:
    cursor = conn.cursor(row_factory=tuple_row)
    try:
        statement = next(plan)
        while True:
            if statement.rows is not None:
                with cursor.copy(statement.sql) as copy:
                    copy.set_types(statement.types)
                    for row in statement.rows:
                        copy.write_row(row)
                statement = plan.send(Reply([], cursor.rowcount))
                continue
            cursor.execute(statement.sql, statement.params)
            if pipeline is not None and not statement.wait:
                statement = plan.send(NO_REPLY)
                continue
            if pipeline is not None:
                pipeline.sync()  # the next step depends on this reply: fetch it now
            rows = cursor.fetchall() if cursor.description is not None else []
            statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        cursor.close()


async def run_async(
    conn: psycopg.AsyncConnection[Any], plan: Plan[T], *, transaction: bool, durable: bool,
    relaxed: bool = False, streams: bool = False,
) -> T:
    """The same as :func:`run_sync`, awaiting each round trip."""
    if streams:
        return await _drive_streaming_async(conn, plan, _setting(durable, relaxed))
    if transaction:
        async with conn.pipeline() as pipeline, conn.transaction():
            if durable or relaxed:
                await conn.execute(DURABLE_SQL if durable else RELAXED_SQL)
            return await _drive_async(conn, plan, pipeline)
    if relaxed:
        return await _drive_relaxed_async(conn, plan)
    return await _drive_async(conn, plan)


async def _drive_relaxed_async(conn: psycopg.AsyncConnection[Any], plan: Plan[T]) -> T:
    cursor = conn.cursor(row_factory=tuple_row)
    try:
        statement = next(plan)
        while True:
            async with conn.pipeline():
                await conn.execute(RELAXED_SQL)
                while not statement.wait:
                    await cursor.execute(statement.sql, statement.params)
                    statement = plan.send(NO_REPLY)
                await cursor.execute(statement.sql, statement.params)
            rows = await cursor.fetchall() if cursor.description is not None else []
            statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        await cursor.close()


async def _drive_streaming_async(
    conn: psycopg.AsyncConnection[Any], plan: Plan[T], setting: list[str],
) -> T:
    cursor = conn.cursor(row_factory=tuple_row)
    opening, committed = ["BEGIN", *setting], False
    try:
        statement = next(plan)
        while True:
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
                statement = plan.send(Reply([], cursor.rowcount))
                continue
            async with conn.pipeline():
                for sql in opening:
                    await conn.execute(sql)
                opening = []
                while not statement.wait:
                    await cursor.execute(statement.sql, statement.params)
                    try:
                        statement = plan.send(NO_REPLY)
                    except StopIteration:
                        await conn.execute("COMMIT")
                        committed = True
                        raise
                    if statement.rows is not None:
                        break
                else:
                    await cursor.execute(statement.sql, statement.params)
            if statement.rows is None:
                rows = await cursor.fetchall() if cursor.description is not None else []
                statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        if not committed:
            await conn.execute("COMMIT")
        return done.value  # type: ignore[no-any-return]
    except BaseException:
        if not opening and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ROLLBACK")
        raise
    finally:
        await cursor.close()


async def _drive_async(
    conn: psycopg.AsyncConnection[Any], plan: Plan[T],
    pipeline: psycopg.AsyncPipeline | None = None,
) -> T:
    cursor = conn.cursor(row_factory=tuple_row)
    try:
        statement = next(plan)
        while True:
            if statement.rows is not None:
                async with cursor.copy(statement.sql) as copy:
                    copy.set_types(statement.types)
                    for row in statement.rows:
                        await copy.write_row(row)
                statement = plan.send(Reply([], cursor.rowcount))
                continue
            await cursor.execute(statement.sql, statement.params)
            if pipeline is not None and not statement.wait:
                statement = plan.send(NO_REPLY)
                continue
            if pipeline is not None:
                await pipeline.sync()
            rows = await cursor.fetchall() if cursor.description is not None else []
            statement = plan.send(Reply(rows, cursor.rowcount))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        await cursor.close()
