"""Backends, chosen by URL scheme. Backends import nothing from the worker, CLI or dashboard."""

from __future__ import annotations

from typing import Any

from conveyor.backends.base import Backend
from conveyor.errors import ConfigurationError


def open_backend(url: str, **options: Any) -> Backend:
    """Create the backend a URL names: ``sqlite:///path.db``, ``postgresql://...`` (more schemes
    as they land)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from conveyor.backends.sqlite.backend import SQLiteBackend

        return SQLiteBackend(url, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from conveyor.backends.postgres.backend import PostgresBackend
        except ImportError as exc:
            raise ConfigurationError(
                f"{url.split('://', 1)[0]}:// URLs need psycopg 3: "
                f"pip install 'conveyor[postgres]' ({exc})"
            ) from None
        return PostgresBackend(url, **options)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from conveyor.backends.redis.backend import RedisBackend

        return RedisBackend(url, **options)
    raise ConfigurationError(
        f"unsupported backend URL {url!r}: expected sqlite:///path.db, redis://host:port/db "
        f"redis+cluster://host:port,host:port or postgresql://user@host/db"
    )


__all__ = ["Backend", "open_backend"]
