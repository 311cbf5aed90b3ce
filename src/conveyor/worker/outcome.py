"""What running one claimed task produced, and the policy that turns it into a transition."""

from __future__ import annotations

import traceback

import msgspec

from conveyor.backends.base import ClaimedTask, Completion, Failure
from conveyor.errors import TaskTimeout
from conveyor.model import DeadReason
from conveyor.retry import Retry

MAX_ERROR_CHARS = 65536


class Outcome(msgspec.Struct, frozen=True):
    ok: bool
    result: bytes | None = None
    error: str | None = None
    retryable: bool = True
    dead_reason: DeadReason | None = None
    """Set when the task must go to the DLQ whatever its retry budget (malformed, unknown)."""
    worker_lost: bool = False
    settled: bool = False
    """The backend already recorded how this attempt ended (a transactional task's own
    transaction marked it DONE, or found its lease lost): there is nothing to acknowledge."""


def succeeded(result: bytes | None) -> Outcome:
    return Outcome(ok=True, result=result)


def raised(error: BaseException, retry: Retry) -> Outcome:
    """A timeout always retries (DESIGN: "failed and retried"); others as ``retry.on`` says."""
    retryable = isinstance(error, TaskTimeout) or retry.retries(error)
    return Outcome(ok=False, error=format_error(error), retryable=retryable)


def rejected(reason: DeadReason, message: str) -> Outcome:
    return Outcome(ok=False, error=message, retryable=False, dead_reason=reason)


def format_error(error: BaseException) -> str:
    """The traceback as text, cut to a bounded size (a huge exception must not bloat a row)."""
    try:
        text = "".join(traceback.format_exception(error))
    except Exception:  # an exception whose __str__ itself raises
        text = f"{type(error).__qualname__}: <unprintable exception>"
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS // 2] + "\n... (cut) ...\n" + text[-MAX_ERROR_CHARS // 2 :]
    return text


def transition(
    claimed: ClaimedTask, outcome: Outcome, retry: Retry, max_worker_lost: int,
    started_at: float | None = None,
) -> Completion | Failure:
    """Decide DONE, a retry after a backoff, or the DLQ with a reason. ``started_at``: when
    the attempt really started, on the backend's clock (None: it never started)."""
    if outcome.ok:
        return Completion(claimed.id, claimed.lease_token, outcome.result, claimed.queue,
                          started_at)
    error = outcome.error or "unknown error"
    reason = outcome.dead_reason
    if reason is None and outcome.worker_lost:
        # A lost pool process is judged as the rescuer judges a lost worker: by max_worker_lost
        # alone, apart from the task's own retry budget ("worker lost" is counted apart from
        # "task raised"), so a task with max_retries=0 is not dead-lettered by one crash.
        if claimed.worker_lost + 1 >= max_worker_lost:
            reason = DeadReason.WORKER_LOST
    elif reason is None and not outcome.retryable:
        reason = DeadReason.NOT_RETRYABLE
    elif reason is None and claimed.attempts > claimed.max_retries:
        reason = DeadReason.MAX_RETRIES
    if reason is not None:
        return Failure(claimed.id, claimed.lease_token, error, None, str(reason),
                       worker_lost=outcome.worker_lost, queue=claimed.queue,
                       started_at=started_at)
    delay = retry.delay(claimed.attempts)
    return Failure(claimed.id, claimed.lease_token, error, delay, None,
                   worker_lost=outcome.worker_lost, queue=claimed.queue, started_at=started_at)
