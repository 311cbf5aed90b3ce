"""Conveyor on its redis backend: the shared Conveyor adapter, URL chosen by the harness."""

from adapters._conveyor import SETTINGS, Producer, worker_commands

__all__ = ["SETTINGS", "Producer", "worker_commands"]
