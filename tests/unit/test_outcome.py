"""The policy that turns an attempt's outcome into DONE, a retry or the DLQ."""

from __future__ import annotations

from conveyor import Retry
from conveyor.backends.base import ClaimedTask
from conveyor.worker.outcome import Outcome, transition


def claimed(attempts: int, max_retries: int, worker_lost: int = 0) -> ClaimedTask:
    return ClaimedTask(
        id="t", name="n", queue="q", payload=b"", priority=5, attempts=attempts,
        max_retries=max_retries, worker_lost=worker_lost, lease_token="tok",
        lease_expires_at=0.0, created_at=0.0, scheduled_at=0.0, idempotency_key=None,
        timeout_seconds=None, result_ttl_seconds=60.0,
    )


LOST = Outcome(ok=False, error="pool process died (exit code 17)", worker_lost=True)


def test_a_lost_pool_process_does_not_spend_the_retry_budget() -> None:
    failure = transition(claimed(attempts=1, max_retries=0), LOST, Retry.fixed(0.0), 3)
    assert failure.dead_reason is None and failure.worker_lost


def test_a_lost_pool_process_goes_dead_at_max_worker_lost() -> None:
    failure = transition(claimed(attempts=3, max_retries=10, worker_lost=2), LOST,
                         Retry.fixed(0.0), 3)
    assert failure.dead_reason == "worker_lost"


def test_a_raised_error_still_spends_the_retry_budget() -> None:
    raised = Outcome(ok=False, error="boom")
    failure = transition(claimed(attempts=1, max_retries=0), raised, Retry.fixed(0.0), 3)
    assert failure.dead_reason == "max_retries"
