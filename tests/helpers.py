"""Test helpers: wait on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, message: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s {message}".strip())
        time.sleep(interval)


def record_claims(app: Any) -> list[int]:
    """The limit of every regular claim ``app``'s workers send from now on; the real backend
    still runs each one (an observer, not a mock)."""
    from conveyor.backends.base import Claim

    limits: list[int] = []
    run = app.backend.aexecute

    async def recording(op: Any) -> Any:
        if isinstance(op, Claim) and not op.min_priority:
            limits.append(op.limit)
        return await run(op)

    app.backend.aexecute = recording
    return limits
