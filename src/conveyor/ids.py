"""Task ids: UUIDv7 strings, time-ordered so new rows land at the end of every B-tree."""

from __future__ import annotations

import os
import time

_MILLIS = (1 << 48) - 1


def new_task_id() -> str:
    return new_task_ids(1)[0]


def new_task_ids(count: int) -> list[str]:
    """``count`` ids of this millisecond: one clock reading and one ``urandom`` call for the
    lot (a bulk enqueue of 1,000 tasks spent a tenth of its Python time on them one by one).
    Each id is the 48-bit millisecond, version 7, 12 random bits, the RFC 4122 variant and 62
    random bits."""
    head = f"{(time.time_ns() // 1_000_000) & _MILLIS:012x}"
    head = f"{head[:8]}-{head[8:]}-7"
    noise = os.urandom(10 * count).hex()
    ids = []
    for start in range(0, 20 * count, 20):
        r = noise[start:start + 20]
        # r[3] carries the variant: its top two bits become 10 (hex 8-b).
        ids.append(f"{head}{r[:3]}-{'89ab'[int(r[3], 16) & 3]}{r[4:7]}-{r[7:19]}")
    return ids


def canonical_uuid(hex32: str) -> str:
    """The 8-4-4-4-12 form of 32 lowercase hex digits, as ``str(uuid.UUID(...))`` gives it
    without building a ``uuid.UUID`` (several microseconds each: a third of a bulk enqueue's
    Python time, and of a Redis claim's reply parsing)."""
    h = hex32
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
