"""Upkeep: the pruner vacuums Conveyor's tables itself once their dead rows pile up, because a
queue table churns (every task inserted, updated twice and deleted) and a server whose
autovacuum is off, or behind, would otherwise let it grow for ever (the shared test server runs
with ``autovacuum = off``: the 10-minute soak grew the tables from 19 to 52 MiB before this).
"""

from __future__ import annotations

import asyncio

import psycopg

from backends.support import new_task
from conveyor.backends.base import Enqueue
from conveyor.backends.postgres.backend import PostgresBackend
from helpers import wait_until


def churn(backend: PostgresBackend, url: str, count: int = 3000) -> None:
    """Enqueue ``count`` tasks and delete them, reporting the deletes to the statistics at once
    (a session otherwise reports its counts within about ten seconds)."""
    backend.execute(Enqueue([new_task() for _ in range(count)]))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM conveyor_tasks")
        conn.execute("SELECT pg_stat_force_next_flush()")
    wait_until(lambda: dead_rows(url)[0] >= count, timeout=30, interval=0.05,
               message="the deletes never reached the statistics")


def dead_rows(url: str) -> tuple[int, int]:
    """``conveyor_tasks``'s dead row count and how many vacuums it had (a fresh connection
    each time: a session caches what it read of the statistics until its transaction ends)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_dead_tup, vacuum_count + autovacuum_count FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = 'conveyor_tasks'").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def upkeep(backend: PostgresBackend) -> None:
    try:
        await backend.upkeep()
    finally:
        await backend.release_loop()


def test_upkeep_vacuums_the_task_table_once_dead_rows_pile_up(pg_url: str) -> None:
    backend = PostgresBackend(pg_url)
    try:
        backend.execute(Enqueue([new_task() for _ in range(3000)]))
        asyncio.run(upkeep(backend))  # nothing dead yet: nothing to vacuum
        assert dead_rows(pg_url)[1] == 0
        churn(backend, pg_url)
        asyncio.run(upkeep(backend))
        dead, vacuums = dead_rows(pg_url)
        assert vacuums == 1 and dead == 0
    finally:
        backend.close()


def test_upkeep_leaves_a_table_alone_while_another_session_vacuums_it(pg_url: str) -> None:
    """``SKIP_LOCKED``: many workers prune every minute, and none waits for another's VACUUM."""
    backend = PostgresBackend(pg_url)
    try:
        churn(backend, pg_url)
        with psycopg.connect(pg_url) as holder:  # the lock a VACUUM in progress holds
            holder.execute("LOCK TABLE conveyor_tasks IN SHARE UPDATE EXCLUSIVE MODE")
            asyncio.run(asyncio.wait_for(upkeep(backend), 10))
            assert dead_rows(pg_url)[1] == 0
    finally:
        backend.close()
