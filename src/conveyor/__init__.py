"""Conveyor: a distributed task queue for Python.

The public surface is what this module exports; everything else is private and may change.
"""

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
