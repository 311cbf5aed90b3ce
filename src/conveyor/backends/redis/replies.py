"""Reply parsers shared by the plans: script rows to the seam's rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.backends import base
from conveyor.backends.redis import keys

STATS_ORDER = ("PENDING", "SCHEDULED", "FAILED", "RUNNING", "DONE", "CANCELLED", "DEAD")


def texts(values: Sequence[bytes]) -> list[str]:
    return [v.decode() for v in values]


def text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def floats(value: bytes | None) -> float | None:
    return None if value is None else float(value)


def seconds(micros: int | bytes) -> float:
    """A time or duration a script sent as whole microseconds (an integer reply, or its digits
    in a hand-off entry): see ``lease_to`` in _record.lua."""
    return int(micros) / 1_000_000


def claimed(r: Sequence[Any]) -> base.ClaimedTask:
    return base.ClaimedTask(
        id=keys.decode_id(r[0]), queue=r[1].decode(), name=r[2].decode(), payload=r[3],
        priority=int(r[4]), attempts=int(r[5]), max_retries=int(r[6]), worker_lost=int(r[7]),
        lease_token=r[8].decode(), lease_expires_at=seconds(r[9]), created_at=seconds(r[10]),
        scheduled_at=seconds(r[11]), idempotency_key=text(r[12]),
        timeout_seconds=None if r[13] is None else seconds(r[13]),
        result_ttl_seconds=seconds(r[14]),
    )


def task_row(r: Sequence[Any]) -> tuple[int, base.TaskRow]:
    """(sequence, row) from a script's row (see ``row`` in _record.lua)."""
    return int(r[19]), base.TaskRow(
        id=keys.decode_id(r[0]), queue=r[1].decode(), name=r[2].decode(), payload=r[3],
        priority=int(r[4]), state=r[5].decode(), attempts=int(r[6]), max_retries=int(r[7]),
        worker_lost=int(r[8]), created_at=float(r[9]), scheduled_at=floats(r[10]),
        started_at=floats(r[11]), completed_at=floats(r[12]), worker_id=text(r[13]),
        error=text(r[14]), result=r[15], idempotency_key=text(r[16]),
        dead_reason=text(r[17]), timeout_seconds=floats(r[18]),
        attempt_errors=text(r[20]) if len(r) > 20 else None,
    )
