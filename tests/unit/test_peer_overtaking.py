"""The peer harness's "overtaking" figure for the priority workload (``benchmarks/peers``): the
most low-priority tasks that started after one high-priority task was enqueued and before it
started. It is what the priority target's "no more lower-priority tasks started before it than
the worker's concurrency" is read against, so it gets a check of its own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "harness.py"


def _load_overtaking():  # type: ignore[no-untyped-def]
    """From the harness's file (standard library only), not a module on ``sys.path``: the
    peers' directory holds modules whose names could shadow others."""
    spec = importlib.util.spec_from_file_location("peer_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.overtaking


overtaking = _load_overtaking()


def test_counts_the_lows_started_inside_one_high_tasks_wait() -> None:
    lows = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    # enqueued at 1.0, started at 4.0: the lows at 1.5, 2.5 and 3.5 overtook it
    assert overtaking([(4.0, 1.0)], lows) == 3


def test_takes_the_worst_high_task_not_the_sum() -> None:
    lows = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    highs = [(2.0, 1.0), (6.0, 4.0)]  # one low overtook the first, two the second
    assert overtaking(highs, lows) == 2


def test_lows_started_before_the_enqueue_or_after_the_start_do_not_count() -> None:
    lows = [1.0, 2.0, 3.0]
    # enqueued exactly as the first low started and started exactly with the last: the lows at
    # those instants were not overtaking (started before it existed, or with it)
    assert overtaking([(3.0, 1.0)], lows) == 1
    assert overtaking([(0.9, 0.5)], lows) == 0
    assert overtaking([], lows) == 0
