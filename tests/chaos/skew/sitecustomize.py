"""A wrong wall clock for the worker processes of the clock-skew test (no libfaketime here).

Put on the PYTHONPATH of a process only: ``CONVEYOR_CLOCK_SKEW`` seconds are added to
``time.time()`` / ``time.time_ns()`` from the start, and ``CONVEYOR_CLOCK_JUMP`` more seconds
once the process has run ``CONVEYOR_CLOCK_JUMP_AFTER`` seconds (a clock stepped by NTP or by
hand). ``time.monotonic`` is left alone, as a real wall-clock step leaves it.
"""

import os
import time

_skew = float(os.environ.get("CONVEYOR_CLOCK_SKEW", "0"))
_jump = float(os.environ.get("CONVEYOR_CLOCK_JUMP", "0"))
_jump_at = time.monotonic() + float(os.environ.get("CONVEYOR_CLOCK_JUMP_AFTER", "0"))
_real_time, _real_time_ns = time.time, time.time_ns


def _offset() -> float:
    return _skew + (_jump if _jump and time.monotonic() >= _jump_at else 0.0)


def _time() -> float:
    return _real_time() + _offset()


def _time_ns() -> int:
    return _real_time_ns() + int(_offset() * 1e9)


if _skew or _jump:
    time.time = _time
    time.time_ns = _time_ns
