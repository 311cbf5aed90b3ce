"""Helpers for testing code that uses Conveyor, with no broker to run.

    from conveyor.testing import FakeClock, isolated

    def test_signup_sends_mail():
        clock = FakeClock()
        with isolated(app, clock=clock):            # a private in-memory store for this test
            signup("a@example.com")                 # code under test enqueues tasks as usual
            app.run_until_idle()                    # runs them here, retries included
            clock.advance(3600)                     # an hour later: delayed tasks are due
            app.run_until_idle()

The in-memory store is the real SQLite backend, not a mock, so what passes here behaves the same
on a real one. Time only moves when the test moves the clock; ``run_until_idle`` then runs
everything due and leaves later work waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.app import Conveyor


class FakeClock:
    """A clock the backend reads instead of the host's; it moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self.now += seconds
        return self.now


@contextmanager
def isolated(app: Conveyor, clock: FakeClock | None = None) -> Iterator[Conveyor]:
    """Point ``app`` at a fresh in-memory store (with ``clock`` if given) for the block, then
    restore its URL and options. ``app.run_until_idle()`` does not wait for delayed work while a
    fake clock is in use: advance the clock instead."""
    saved_url, saved_options = app.url, app.backend_options
    saved_wait = app.run_until_idle_waits
    app.use("sqlite://:memory:", **({"clock": clock} if clock is not None else {}))
    app.run_until_idle_waits = clock is None
    try:
        yield app
    finally:
        app.use(saved_url, **saved_options)
        app.run_until_idle_waits = saved_wait
