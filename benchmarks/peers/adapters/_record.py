"""What every peer's task handler does: append one fixed-size record, nothing else.

(task number, reference time, start time) in the same layout as ``conveyor.bench``. One
``O_APPEND`` write of 20 bytes is atomic on a local file, so any number of worker processes
and threads can share the file; the harness polls its size instead of asking the broker.
"""

from __future__ import annotations

import os
import struct
import time

RECORD = struct.Struct("<Idd")
_fd: int | None = None
_fd_pid: int | None = None


def append(number: int, ref: float) -> None:
    """Record that task ``number`` started now. Opened lazily (after any fork) per process."""
    global _fd, _fd_pid
    if _fd is None or _fd_pid != os.getpid():
        _fd = os.open(os.environ["PEERBENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                      0o644)
        _fd_pid = os.getpid()
    os.write(_fd, RECORD.pack(number, ref, time.time()))


def url() -> str:
    """The broker or database URL of this run (set by the harness for producer and workers)."""
    # Never the shared Redis at 6379: outside the harness, point at a port nothing uses.
    return os.environ.get("PEERBENCH_URL", "redis://127.0.0.1:1/0")
