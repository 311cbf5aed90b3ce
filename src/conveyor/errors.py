"""Every exception Conveyor raises on purpose.

    ConveyorError
    ├── ConfigurationError      bad URL, bad option, unknown backend scheme
    ├── EnqueueError            the task was refused at enqueue; nothing was written
    │   ├── UnknownTaskError    no task of that name is registered in the app
    │   ├── SerializationError  args/kwargs (or a result) cannot be encoded as msgpack
    │   ├── PayloadTooLarge     the encoded payload exceeds ``max_payload_bytes``
    │   └── InvalidOptionError  priority outside 0-9, negative delay, bad eta, ...
    ├── LeaseLost               a worker acted on a task whose lease it no longer holds
    ├── TaskTimeout             a task ran past its timeout (always retried, budget permitting)
    ├── TaskFailed              ``TaskHandle.result()`` on a task that ended DEAD or CANCELLED
    ├── ResultTimeout           ``TaskHandle.result(timeout)`` gave up waiting
    └── BackendUnavailable      the backend could not be reached

Callers catch :class:`EnqueueError` to handle every refused enqueue at once; the
subclasses exist so a message can say exactly what was wrong.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base class of all Conveyor errors."""


class ConfigurationError(ConveyorError):
    """The application or backend is configured wrongly."""


class EnqueueError(ConveyorError):
    """A task was refused at enqueue; nothing was written to the backend."""


class UnknownTaskError(EnqueueError):
    """No task of that name is registered in the app."""


class SerializationError(EnqueueError):
    """A value cannot be encoded (payloads are msgpack, never pickle)."""


class PayloadTooLarge(EnqueueError):
    """The encoded payload is larger than the configured limit."""


class InvalidOptionError(EnqueueError):
    """An enqueue option is out of range (priority, delay, eta, ...)."""


class LeaseLost(ConveyorError):
    """The lease token no longer matches: another worker owns the task now."""


class TaskTimeout(ConveyorError, TimeoutError):
    """A task ran longer than its ``timeout``; it is failed and retried like any error."""


class TaskFailed(ConveyorError):
    """The task ended without a result (DEAD or CANCELLED)."""

    def __init__(self, message: str, *, state: str, error: str | None) -> None:
        super().__init__(message)
        self.state = state
        self.error = error


class ResultTimeout(ConveyorError, TimeoutError):
    """The task did not finish within the time given to ``result()``."""


class BackendUnavailable(ConveyorError):
    """The backend cannot be reached."""
