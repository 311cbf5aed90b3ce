"""The PostgreSQL server for tests: a private database on the shared server, never another one.

One database per test session, with a random name, created on first use on the server named by
``CONVEYOR_TEST_POSTGRES`` (default: the local one, ``postgresql://postgres@127.0.0.1:5432/test``;
that database is only used to create and drop ours) and dropped when the session ends. Each test
gets a fresh schema in it, named in the URL's ``search_path``, so other processes given the URL
(worker subprocesses) see the same store. A server that cannot be reached fails the tests that
need it: CI has one, and a silent skip would hide a backend that no longer passes.
"""

from __future__ import annotations

import atexit
import itertools
import os
import uuid
from urllib.parse import quote

import psycopg
from psycopg import sql

from conveyor.backends.postgres import schema

ADMIN_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

_database: str | None = None
_connection: psycopg.Connection[tuple[object, ...]] | None = None
_schemas = itertools.count(1)


def _admin(dbname: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    try:
        if dbname is None:
            return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5, dbname=dbname)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"the PostgreSQL test server at {ADMIN_URL} is unreachable ({exc}); start it or "
            f"point CONVEYOR_TEST_POSTGRES at one"
        ) from exc


def database() -> str:
    """The session's private database (created on first use, dropped at exit)."""
    global _database
    if _database is None:
        name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        _database = name
        atexit.register(_drop, name)
    return _database


def _drop(name: str) -> None:
    if _connection is not None:
        _connection.close()
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def database_url(dbname: str | None = None, schema: str | None = None) -> str:
    """A URL of the test database (or ``dbname``), its search_path set to ``schema``."""
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user = quote(str(info.get("user", "postgres")))
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    url = f"postgresql://{user}@{host}:{port}/{dbname or database()}"
    if schema is not None:
        url += f"?options=-csearch_path%3D{schema}"
    return url


def fresh_url(migrated: bool = True) -> str:
    """The URL of an empty store: a new schema in the session's database, migrated here by the
    library's own migrations (the backend then finds it up to date)."""
    global _connection
    name = f"t{next(_schemas)}_{os.getpid()}"
    if _connection is None or _connection.closed:
        _connection = _admin(database())
        # Test schemas are thrown away: not waiting for their DDL to reach the disk makes a fresh
        # store cost ~15 ms instead of ~90.
        _connection.execute("SET synchronous_commit = off")
    _connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    if migrated:
        _connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(name)))
        schema.migrate(_connection)
    return database_url(schema=name)
