"""The schema, managed by the library: numbered migrations and a table of those applied.

``migrations/NNNN_name.sql`` are applied in order, each in the same transaction as its row in
``conveyor_migrations``, under a transaction-scoped advisory lock, so any number of processes
starting at once apply each migration exactly once (the others wait, then find it done). Tables
are created in the first schema of the connection's ``search_path``; put
``options=-csearch_path%3Dmyschema`` in the URL to keep Conveyor's tables in a schema of their own.

A backend migrates on first use unless opened with ``migrate=False`` (deployments that migrate
in a release step: ``conveyor migrate``); then it refuses to run against an older schema.
"""

from __future__ import annotations

from typing import Any

import psycopg

from conveyor.backends.queryfiles import load_migrations
from conveyor.errors import ConfigurationError

MIGRATIONS = load_migrations("conveyor.backends.postgres")
LATEST = MIGRATIONS[-1][0]
LOCK_KEY = 0x636F6E76  # "conv": the advisory lock that serializes migrators

_CREATE_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS conveyor_migrations (
    version     integer PRIMARY KEY,
    applied_at  double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp())
)"""


def applied_versions(conn: psycopg.Connection[Any]) -> list[int]:
    """Versions recorded in this search_path's ``conveyor_migrations`` (none if absent)."""
    [(present,)] = conn.execute(
        "SELECT to_regclass('conveyor_migrations') IS NOT NULL"
    ).fetchall()
    if not present:
        return []
    return [v for (v,) in conn.execute("SELECT version FROM conveyor_migrations ORDER BY 1")]


def pending(conn: psycopg.Connection[Any]) -> list[int]:
    done = set(applied_versions(conn))
    return [version for version, _ in MIGRATIONS if version not in done]


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply every pending migration; returns the versions applied by this call.

    ``conn`` must be in autocommit mode (each migration is its own transaction)."""
    if not pending(conn):
        return []
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(_CREATE_BOOKKEEPING)
        done = set(applied_versions(conn))
        for version, script in MIGRATIONS:
            if version in done:
                continue
            conn.execute(script.encode())  # no parameters: the simple protocol, many statements
            conn.execute("INSERT INTO conveyor_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied


def check(conn: psycopg.Connection[Any]) -> None:
    """For ``migrate=False``: refuse to run on a schema older than this library."""
    missing = pending(conn)
    if missing:
        raise ConfigurationError(
            f"the Conveyor schema is missing migrations {missing} (this version needs "
            f"{LATEST}): run `conveyor migrate`, or open the backend with migrate=True"
        )
