"""The backend's own sessions: durable commits whatever the settings they inherit, and the
connection options of the URL kept."""

from __future__ import annotations

import asyncio

from conveyor.backends.base import Claim, Enqueue, NewTask
from conveyor.backends.postgres.backend import PostgresBackend


def test_own_sessions_commit_durably_and_keep_the_urls_options(pg_url: str) -> None:
    """An enqueue is one statement in autocommit on these sessions: its durability comes from
    the session, so a role, database or URL that turned synchronous_commit off must not."""
    url = pg_url + "%20-csynchronous_commit%3Doff%20-cstatement_timeout%3D12345"
    backend = PostgresBackend(url)
    try:
        with backend._sync_pool().connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
            assert conn.execute("SHOW statement_timeout").fetchone() == ("12345ms",)
            search_path = conn.execute("SHOW search_path").fetchone()
        assert search_path is not None and search_path[0].startswith("t")  # the test schema

        async def on_a_loop() -> object:
            pool = await backend._async_pool()
            async with pool.connection() as conn:
                cursor = await conn.execute("SHOW synchronous_commit")
                durable = await cursor.fetchone()
            await backend.release_loop()
            return durable

        assert asyncio.run(on_a_loop()) == ("on",)
        backend.execute(Enqueue([NewTask(id="t-1", name="n", queue="q", payload=b"", priority=0,
                                          max_retries=0)]))
        assert [t.id for t in backend.execute(Claim("w", ["q"], 1, 30.0))] == ["t-1"]
    finally:
        backend.close()
