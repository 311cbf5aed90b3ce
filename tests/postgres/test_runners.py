"""The PostgreSQL runners' transactions: all or nothing, errors always raised, and as few round
trips as the plan allows. Plans are written out here, so each case is exactly the one named."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from conveyor.backends.postgres.plans import Plan, Statement
from conveyor.backends.postgres.runners import run_async, run_sync


@dataclass(frozen=True, slots=True)
class Raw(Statement):
    """A statement written out here rather than named from ``queries/``."""

    @property
    def sql(self) -> bytes:
        return self.query.encode()


@pytest.fixture
def url(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int PRIMARY KEY)")
        # Checked at COMMIT only: the one way to make a COMMIT itself fail.
        conn.execute("CREATE TABLE c (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
    return pg_url


def rows(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")]


def inserts(*numbers: int, last: str | None = None) -> Plan[str]:
    """Inserts whose replies nobody reads, then ``last`` (also unread) if given."""
    for n in numbers:
        yield Raw("INSERT INTO t VALUES (%(n)s)", {"n": n}, wait=False)
    if last is not None:
        yield Raw(last, {}, wait=False)
    return "done"


def read_between() -> Plan[int]:
    yield Raw("INSERT INTO t VALUES (1)", {}, wait=False)
    reply = yield Raw("SELECT count(*) FROM t", {})
    yield Raw("INSERT INTO t VALUES (%(n)s)", {"n": 10 + reply.rows[0][0]}, wait=False)
    return int(reply.rows[0][0])


def run(url: str, plan: Plan[Any], asynchronous: bool) -> Any:
    if not asynchronous:
        with psycopg.connect(url, autocommit=True) as conn:
            result = run_sync(conn, plan, transaction=True)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            return result

    async def go() -> Any:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            result = await run_async(conn, plan, transaction=True)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            return result

    return asyncio.run(go())


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def asynchronous(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_transaction_commits_every_statement(url: str, asynchronous: bool) -> None:
    assert run(url, inserts(1, 2, 3), asynchronous) == "done"
    assert rows(url) == [1, 2, 3]


def test_a_failing_last_statement_raises_and_rolls_back_the_rest(
    url: str, asynchronous: bool
) -> None:
    """The error of a statement whose reply nobody reads, sent with the COMMIT, still raises:
    psycopg only logs errors met while a pipeline block is left by an exception."""
    with pytest.raises(psycopg.errors.DivisionByZero):
        run(url, inserts(1, 2, last="SELECT 1 / 0"), asynchronous)
    assert rows(url) == []


def copy_then(first: int, last: str) -> Plan[str]:
    """An insert, a COPY of two rows, then ``last``: the shape of a bulk enqueue."""
    yield Raw("INSERT INTO t VALUES (%(n)s)", {"n": first}, wait=False)
    yield Raw("COPY t (n) FROM STDIN (FORMAT BINARY)", {}, rows=[(first + 1,), (first + 2,)],
              types=["int4"])
    yield Raw(last, {}, wait=False)
    return "done"


def test_a_failing_statement_after_a_copy_raises_and_rolls_back(
    url: str, asynchronous: bool
) -> None:
    assert run(url, copy_then(1, "INSERT INTO t VALUES (4)"), asynchronous) == "done"
    assert rows(url) == [1, 2, 3, 4]
    with pytest.raises(psycopg.errors.UniqueViolation):
        run(url, copy_then(10, "INSERT INTO t VALUES (4)"), asynchronous)
    assert rows(url) == [1, 2, 3, 4]


def test_a_failing_commit_raises(url: str, asynchronous: bool) -> None:
    plan = inserts(1, last="INSERT INTO c VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        run(url, plan, asynchronous)
    assert rows(url) == []


def test_a_step_that_reads_a_reply_stays_in_the_transaction(url: str, asynchronous: bool) -> None:
    assert run(url, read_between(), asynchronous) == 1
    assert rows(url) == [1, 11]


def empty() -> Plan[str]:
    return "nothing"
    yield  # a generator that returns at once


def test_a_plan_without_statements_returns_its_value(url: str, asynchronous: bool) -> None:
    assert run(url, empty(), asynchronous) == "nothing"


def test_a_plan_without_statements_sends_nothing(url: str) -> None:
    """No BEGIN, no COMMIT: an empty batch costs no round trip at all."""
    with psycopg.connect(url, autocommit=True) as conn:
        trace = protocol_trace(conn, lambda: run_sync(conn, empty(), transaction=True))
    assert trace == ""


def test_unread_statements_and_the_commit_cost_one_round_trip(url: str) -> None:
    """BEGIN, three inserts and COMMIT travel together: one sync, one
    round trip (a ``transaction()`` block inside a pipeline costs four)."""
    with psycopg.connect(url, autocommit=True) as conn:
        trace = protocol_trace(conn, lambda: run_sync(conn, inserts(1, 2, 3),
                                                       transaction=True))
    assert trace.count("ReadyForQuery") == 1, trace
    assert rows(url) == [1, 2, 3]


def test_a_step_that_reads_a_reply_costs_one_more_round_trip(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        trace = protocol_trace(conn, lambda: run_sync(conn, read_between(),
                                                       transaction=True))
    assert trace.count("ReadyForQuery") == 2, trace


def protocol_trace(conn: psycopg.Connection[Any], call: Callable[[], object]) -> str:
    """The protocol messages exchanged during ``call`` (libpq's trace): a server reply to a
    sync, ``ReadyForQuery``, ends each round trip."""
    with tempfile.TemporaryFile() as out:
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            call()
        finally:
            conn.pgconn.untrace()
        out.seek(0)
        return out.read().decode()
