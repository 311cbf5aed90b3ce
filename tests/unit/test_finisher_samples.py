"""The finisher counts every attempt's metrics, also when a task retried at once fails, is
claimed again and finishes while the failure's acknowledgement is still in flight (seen as a
missing "retried" count in the metrics conformance test on a loaded machine)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from backends.support import claim_one, enqueue, new_task
from conveyor.backends import open_backend
from conveyor.backends.base import Backend, Completion, Fail, Failure, Transition
from conveyor.worker.finisher import Finisher
from conveyor.worker.metrics import MetricsRecorder

LEASE = 30.0


class SecondAttemptDuringFail:
    """A real backend; while its first ``Fail`` is applied (before the reply is read), the
    task is claimed again and that attempt's completion reaches the finisher, as a worker's
    fetch loop and thread would do meanwhile."""

    def __init__(self, backend: Backend, metrics: MetricsRecorder) -> None:
        self.backend = backend
        self.metrics = metrics
        self.finisher: Finisher | None = None

    async def aexecute(self, op: Transition[Any]) -> Any:
        reply = await self.backend.aexecute(op)
        if isinstance(op, Fail) and self.finisher is not None:
            second = claim_one(self.backend, lease=LEASE)
            self.metrics.claimed([second])
            self.metrics.started(second)
            done = Completion(second.id, second.lease_token, None)
            self.finisher.add(done, self.metrics.sample(second, done))
            self.finisher = None
        return reply


def test_both_attempts_of_a_task_retried_at_once_are_counted(tmp_path: Path) -> None:
    backend = open_backend(f"sqlite:///{tmp_path / 'f.db'}")
    metrics = MetricsRecorder(LEASE)
    spy = SecondAttemptDuringFail(backend, metrics)
    finisher = Finisher(spy, lambda _count: None, metrics)  # type: ignore[arg-type]
    spy.finisher = finisher
    try:
        enqueue(backend, new_task())
        first = claim_one(backend, lease=LEASE)
        metrics.claimed([first])
        metrics.started(first)
        failed = Failure(first.id, first.lease_token, "boom", retry_in_seconds=0.0)
        finisher.add(failed, metrics.sample(first, failed))

        asyncio.run(finisher.flush())  # acknowledges both; the metrics are not due yet
        op = metrics.take()
        recorded = finisher_counts(op.counts if op is not None else [])
        assert spy.finisher is None, "the second attempt ran during the failure's round trip"
        assert (recorded.get("retried"), recorded.get("succeeded")) == (1, 1)
    finally:
        backend.close()


def finisher_counts(counts: Any) -> dict[str, float]:
    return {c.name: c.value for c in counts if c.name in ("retried", "succeeded", "failed")}
