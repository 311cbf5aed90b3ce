"""Conveyor: a distributed task queue for Python.

The public surface is what this module exports; everything else is private and may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.context import TaskContext, current_task
    from conveyor.errors import (
        BackendUnavailable,
        ConfigurationError,
        ConveyorError,
        EnqueueError,
        InvalidOptionError,
        LeaseLost,
        PayloadTooLarge,
        ResultTimeout,
        SerializationError,
        TaskFailed,
        TaskTimeout,
        UnknownTaskError,
    )
    from conveyor.model import (
        AttemptError,
        DeadReason,
        LatencySummary,
        MinutePoint,
        QueueStats,
        Stats,
        TaskInfo,
        TaskState,
        WorkerInfo,
    )
    from conveyor.retry import Retry
    from conveyor.task import BoundTask, Task, TaskHandle
    from conveyor.worker.worker import Worker

__version__ = "0.1.0"

_EXPORTS = {
    "AttemptError": "conveyor.model",
    "BackendUnavailable": "conveyor.errors",
    "BoundTask": "conveyor.task",
    "ConfigurationError": "conveyor.errors",
    "Conveyor": "conveyor.app",
    "ConveyorError": "conveyor.errors",
    "DeadReason": "conveyor.model",
    "EnqueueError": "conveyor.errors",
    "InvalidOptionError": "conveyor.errors",
    "LatencySummary": "conveyor.model",
    "LeaseLost": "conveyor.errors",
    "MinutePoint": "conveyor.model",
    "PayloadTooLarge": "conveyor.errors",
    "QueueStats": "conveyor.model",
    "ResultTimeout": "conveyor.errors",
    "Retry": "conveyor.retry",
    "SerializationError": "conveyor.errors",
    "Stats": "conveyor.model",
    "Task": "conveyor.task",
    "TaskContext": "conveyor.context",
    "TaskFailed": "conveyor.errors",
    "TaskHandle": "conveyor.task",
    "TaskInfo": "conveyor.model",
    "TaskState": "conveyor.model",
    "TaskTimeout": "conveyor.errors",
    "UnknownTaskError": "conveyor.errors",
    "Worker": "conveyor.worker.worker",
    "WorkerInfo": "conveyor.model",
    "current_task": "conveyor.context",
}
"""Where each public name lives. Imported on first use (PEP 562), so that a process which needs
one corner of the package (the lease keeper, which only extends leases; ``conveyor --help``)
does not import all of it: the keeper's start-up was a fifth of a second of CPU beside a
worker draining at full speed."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "AttemptError",
    "BackendUnavailable",
    "BoundTask",
    "ConfigurationError",
    "Conveyor",
    "ConveyorError",
    "DeadReason",
    "EnqueueError",
    "InvalidOptionError",
    "LatencySummary",
    "LeaseLost",
    "MinutePoint",
    "PayloadTooLarge",
    "QueueStats",
    "ResultTimeout",
    "Retry",
    "SerializationError",
    "Stats",
    "Task",
    "TaskContext",
    "TaskFailed",
    "TaskHandle",
    "TaskInfo",
    "TaskState",
    "TaskTimeout",
    "UnknownTaskError",
    "Worker",
    "WorkerInfo",
    "__version__",
    "current_task",
]
