"""An async producer's ``asyncio.run`` ends: psycopg_pool's async pool catches the
cancellation of a connection it was still opening and schedules another attempt, so a pool
still growing when ``asyncio.run`` cancelled the leftover tasks kept the process from exiting
(about 1 run in 8 of five concurrent ``aenqueue`` calls). The loop's pool has a fixed size now:
opened whole before the first call, it never connects in the background."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

PRODUCER = textwrap.dedent("""
    import asyncio, sys
    from conveyor import Conveyor

    app = Conveyor(sys.argv[1])

    @app.task(name="exit.add")
    def add(a: int, b: int) -> int:
        return a + b

    async def main() -> None:
        await asyncio.gather(*[add.aenqueue(i, 1) for i in range(5)])

    asyncio.run(main())
""")


def test_an_async_producer_exits_after_concurrent_enqueues(pg_url: str) -> None:
    env = {**os.environ, "CONVEYOR_URL": pg_url}
    hung = 0
    for _ in range(20):
        try:
            done = subprocess.run([sys.executable, "-c", PRODUCER, pg_url], env=env,
                                  capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            hung += 1
            continue
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert hung == 0, f"{hung} of 20 runs did not exit"
