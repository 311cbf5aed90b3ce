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
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
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


class PrivateCluster:
    """A PostgreSQL cluster of the tests' own: ``initdb`` in a temporary directory, started with
    ``pg_ctl`` on a free loopback port, so fault tests can stop it (``-m immediate`` is a crash)
    and start it again. Never the shared server. Run as the ``postgres`` user when the tests run
    as root (initdb refuses root)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> PrivateCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync")
        return self

    def start(self) -> PrivateCluster:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c max_connections=200")
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, recovery from the WAL at the next start."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def signal(self, signum: int) -> None:
        """Signal the postmaster (SIGSTOP/SIGCONT for a stall)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signum)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"{name} is not installed: the PostgreSQL fault tests need it")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
