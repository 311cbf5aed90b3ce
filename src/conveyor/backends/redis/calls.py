"""The calls a plan yields to its runner: a script, a plain command, or independent calls.

Kept apart from :mod:`plans` so the helpers that plans use (partitions, startup checks) can
yield calls without importing the planner.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Arg = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class Eval:
    """One script call: atomic. All its KEYS share one slot whenever the backend is a cluster."""

    script: str
    keys: Sequence[str]
    args: Sequence[Arg]


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Each:
    """Independent calls, each atomic on its own (on a cluster, each in its own slot). The
    runner may run them concurrently; the reply is the list of their replies, in order."""

    calls: tuple[Eval | Command, ...]


Plan = Generator[Eval | Command | Each, Any, T]
