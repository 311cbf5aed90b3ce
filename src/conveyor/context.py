"""``current_task()``: what a running task may know about itself.

A context variable, so it is right in async tasks sharing one loop, in threads (the worker copies
the context into the thread) and in pool processes (the child sets it).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import msgspec


class TaskContext(msgspec.Struct, frozen=True):
    id: str
    name: str
    queue: str
    attempt: int
    """1 on the first run, 2 on the first retry, ..."""
    max_retries: int
    idempotency_key: str | None
    worker_id: str | None = None
    connection: Any = None
    """For ``transactional=True`` tasks on PostgreSQL: the connection whose transaction also
    marks the task DONE. None elsewhere."""


_current: ContextVar[TaskContext | None] = ContextVar("conveyor_current_task", default=None)


def current_task() -> TaskContext:
    """The context of the task running in this thread or coroutine.

    Raises ``RuntimeError`` outside a task, so a mistake is loud rather than a silent None.
    """
    context = _current.get()
    if context is None:
        raise RuntimeError("current_task() called outside a running Conveyor task")
    return context


def set_current_task(context: TaskContext | None) -> None:
    _current.set(context)
