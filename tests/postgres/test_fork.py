"""Fork safety: a backend used before ``os.fork()`` works in the child (which opens its own
connections) and goes on working in the parent (whose sessions the child never touched)."""

from __future__ import annotations

import asyncio
import os

import pytest

from backends.support import claim, enqueue, new_task
from conveyor.backends.base import ListTasks
from conveyor.backends.postgres.backend import PostgresBackend


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_backend_used_before_fork_works_in_the_child_and_the_parent(pg_url: str) -> None:
    backend = PostgresBackend(pg_url)
    try:
        enqueue(backend, new_task())
        assert claim(backend, limit=1)  # pools, listener thread and sessions all open
        asyncio.run(backend.aexecute(ListTasks()))
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                [task_id] = enqueue(backend, new_task("child"))
                claimed = claim(backend, ["child"], limit=1)
                listed = asyncio.run(backend.aexecute(ListTasks(queue="child")))
                if [c.id for c in claimed] == [task_id] and len(listed) == 1:
                    code = 0
                backend.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        enqueue(backend, new_task("parent"))
        assert [c.queue for c in claim(backend, ["parent", "child"], limit=5)] == ["parent"]
        assert len(backend.execute(ListTasks())) == 3
    finally:
        backend.close()
