"""Backends, chosen by URL scheme. Backends import nothing from the worker, CLI or dashboard."""

from __future__ import annotations

from typing import Any

from conveyor.backends.base import Backend
from conveyor.errors import ConfigurationError


def open_backend(url: str, **options: Any) -> Backend:
    """Create the backend a URL names: ``sqlite:///path.db`` (more schemes as they land)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from conveyor.backends.sqlite.backend import SQLiteBackend

        return SQLiteBackend(url, **options)
    raise ConfigurationError(
        f"unsupported backend URL {url!r}: expected sqlite:///path.db"
    )


__all__ = ["Backend", "open_backend"]
