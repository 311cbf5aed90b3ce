"""Retry policy: pure functions of (attempt, error), written once above every backend.

Tenacity suits in-process loops; here the wait is persisted (the task sits FAILED in the schedule
until its retry time), so the policy only has to answer "retry after how long, or not at all".
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from msgspec import Struct


class Retry(Struct, frozen=True, kw_only=True):
    """When and how often a failed task is tried again.

    ``attempt`` counts runs that have already happened (1 after the first failure). The delay before
    attempt n+1 is ``min(max_delay, base * factor ** (n - 1))``; with ``jitter`` it is drawn
    uniformly from ``[0, that]`` ("full jitter"), which spreads a burst of failures out so retries
    do not arrive as a thundering herd.
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True
    on: tuple[type[BaseException], ...] = (Exception,)
    """Only these exception types are retried; anything else goes straight to the DLQ."""

    @classmethod
    def exponential(
        cls,
        base: float = 1.0,
        factor: float = 2.0,
        max_delay: float = 60.0,
        jitter: bool = True,
        on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    ) -> Retry:
        finite = all(math.isfinite(v) for v in (base, factor, max_delay))
        if not finite or base < 0 or factor < 1 or max_delay < 0:
            raise ValueError(
                "Retry.exponential needs finite base >= 0, factor >= 1, max_delay >= 0"
            )
        return cls(base=base, factor=factor, max_delay=max_delay, jitter=jitter, on=_as_tuple(on))

    @classmethod
    def fixed(
        cls,
        delay: float,
        jitter: bool = False,
        on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    ) -> Retry:
        if not math.isfinite(delay) or delay < 0:
            raise ValueError("Retry.fixed needs a finite delay >= 0")
        return cls(base=delay, factor=1.0, max_delay=delay, jitter=jitter, on=_as_tuple(on))

    def retries(self, error: BaseException) -> bool:
        return isinstance(error, self.on)

    def delay(
        self, attempt: int, uniform: Callable[[float, float], float] = random.uniform
    ) -> float:
        """Seconds to wait after ``attempt`` failed runs."""
        exponent = max(0, attempt - 1)
        try:
            raw = self.base * self.factor**exponent
        except OverflowError:
            raw = self.max_delay
        capped = min(self.max_delay, raw)
        return uniform(0.0, capped) if self.jitter else capped

    def next_delay(
        self, attempt: int, max_retries: int, error: BaseException
    ) -> float | None:
        """Seconds until the next attempt, or ``None`` when the task should go to the DLQ."""
        if attempt > max_retries or not self.retries(error):
            return None
        return self.delay(attempt)


def _as_tuple(
    on: tuple[type[BaseException], ...] | type[BaseException],
) -> tuple[type[BaseException], ...]:
    return on if isinstance(on, tuple) else (on,)


DEFAULT_RETRY = Retry()
NO_RETRY = Retry(on=())
