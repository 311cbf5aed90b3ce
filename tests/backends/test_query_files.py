"""Named statements and migrations: one query file per transition in every SQL backend, and a
fresh database built by the migrations has exactly the schema the migration files describe."""

from __future__ import annotations

import pkgutil
import re
import sqlite3
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

import conveyor.backends
from conveyor.backends.base import Now, transition_names
from conveyor.backends.queryfiles import load_migrations, load_queries
from conveyor.backends.sqlite.backend import SQLiteBackend

PURE_PYTHON = {"now"}
"""Transitions a backend answers without a statement of its own."""


def _sql_backends() -> list[str]:
    """Every backend package that keeps its statements in a ``queries/`` folder."""
    found = []
    for module in pkgutil.iter_modules(conveyor.backends.__path__, "conveyor.backends."):
        if module.ispkg and resources.files(module.name).joinpath("queries").is_dir():
            found.append(module.name)
    return sorted(found)


SQL_BACKENDS = _sql_backends()


def _query_files(package: str) -> list[str]:
    folder: Traversable = resources.files(package).joinpath("queries")
    return sorted(e.name.removesuffix(".sql") for e in folder.iterdir() if e.name.endswith(".sql"))


def _owner(query: str, transitions: list[str]) -> str | None:
    """The transition a query file belongs to: its name, or its name plus '_' and a step."""
    owners = [t for t in transitions if query == t or query.startswith(t + "_")]
    return max(owners, key=len) if owners else None


def test_sqlite_is_found() -> None:
    assert "conveyor.backends.sqlite" in SQL_BACKENDS


def test_transition_names_are_snake_case_and_unique() -> None:
    names = transition_names()
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", n) for n in names)
    assert {"enqueue", "claim", "complete", "fail", "extend", "release", "recover_expired",
            "cancel", "requeue", "purge", "prune", "queue_stats_read", "now"} <= set(names)


@pytest.mark.parametrize("package", SQL_BACKENDS)
def test_every_transition_has_a_query_file(package: str) -> None:
    files = _query_files(package)
    missing = [
        t for t in transition_names()
        if t not in PURE_PYTHON and not any(f == t or f.startswith(t + "_") for f in files)
    ]
    assert missing == []


WAKE_UP_STEPS = {"conveyor.backends.postgres": {"offer", "withdraw"}}
"""Statements of a backend's wake-ups, which are not transitions: PostgreSQL's idle workers
offer to be woken alone by a single new task (0006_offers.sql)."""


@pytest.mark.parametrize("package", SQL_BACKENDS)
def test_every_query_file_belongs_to_a_transition(package: str) -> None:
    names = transition_names()
    assert [f for f in _query_files(package) if _owner(f, names) is None
            and f not in WAKE_UP_STEPS.get(package, set())] == []


@pytest.mark.parametrize("package", SQL_BACKENDS)
def test_query_files_are_not_empty(package: str) -> None:
    for name, text in load_queries(package).items():
        assert text.strip(), f"{name}.sql is empty"


DIALECT_ONLY = {
    "conveyor.backends.postgres": {"enqueue_copy", "enqueue_copy_start", "prune_bloated",
                                   "prune_offers", *WAKE_UP_STEPS["conveyor.backends.postgres"]},
    "conveyor.backends.sqlite": {"claim_promote_due", "claim_bury"},
}
"""Steps that only one dialect has: PostgreSQL streams large batches with COPY, vacuums the
tables that pruning leaves full of dead rows, and keeps idle workers' offers; SQLite promotes
due tasks in a statement of their own, where PostgreSQL's claim statements do it too (a claim
is then one plain statement per round trip), and buries a claimed row whose columns hold
values of the wrong types, which PostgreSQL's typed columns never store."""
RELAXED_COMMITS = {"conveyor.backends.postgres": {"claim", "claim_oldest"}}
"""Statements whose commit need not wait for the WAL flush (a claim a crash loses leaves its
tasks PENDING), and say so themselves: the runner sends them alone, with no SET LOCAL."""


@pytest.mark.parametrize("package", sorted(RELAXED_COMMITS))
def test_claims_relax_their_own_commits_and_nothing_else_does(package: str) -> None:
    folder = resources.files(package).joinpath("queries")
    relaxing = {f for f in _query_files(package)
                if "set_config('synchronous_commit', 'off', true)"
                in folder.joinpath(f + ".sql").read_text(encoding="utf-8")}
    assert relaxing == RELAXED_COMMITS[package]


def test_the_same_query_files_in_every_sql_backend() -> None:
    """River's rule: the same file names in every dialect, so the backends stay parallel
    (apart from the few steps listed in ``DIALECT_ONLY``)."""
    names = {package: [f for f in _query_files(package)
                       if f not in DIALECT_ONLY.get(package, set())]
             for package in SQL_BACKENDS}
    assert len({tuple(v) for v in names.values()}) == 1, names


# -- SQLite: the statements compile, and the migrations build the schema ------------------------


def _fresh_schema(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {
        (kind, name, re.sub(r"\s+", " ", sql).strip())
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        )
    }


def _scripted_schema() -> set[tuple[str, str, str]]:
    """The schema the migration files describe, applied directly by SQLite's own parser."""
    conn = sqlite3.connect(":memory:")
    try:
        for _, script in load_migrations("conveyor.backends.sqlite"):
            conn.executescript(script)
        return _fresh_schema(conn)
    finally:
        conn.close()


def _schema_of(path: Path) -> set[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return _fresh_schema(conn)
    finally:
        conn.close()


def _open(path: Path) -> None:
    backend = SQLiteBackend(f"sqlite:///{path}")
    try:
        backend.execute(Now())
    finally:
        backend.close()


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [v for v, _ in load_migrations("conveyor.backends.sqlite")]
    assert versions == list(range(1, len(versions) + 1))


def test_a_fresh_database_has_the_schema_of_the_migration_files(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    _open(path)
    built = _schema_of(path)
    bookkeeping = {entry for entry in built if entry[1] == "conveyor_migrations"}
    assert built - bookkeeping == _scripted_schema()
    assert {name for kind, name, _ in built if kind == "table"} == {
        "conveyor_tasks", "conveyor_workers", "conveyor_migrations", "conveyor_locks",
        "conveyor_schedules", "conveyor_queues", "conveyor_metrics",
    }


def test_reopening_a_database_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "again.db"
    _open(path)
    first = _schema_of(path)
    _open(path)
    _open(path)
    assert _schema_of(path) == first
    conn = sqlite3.connect(path)
    try:
        versions = [v for (v,) in conn.execute("SELECT version FROM conveyor_migrations")]
    finally:
        conn.close()
    assert versions == [v for v, _ in load_migrations("conveyor.backends.sqlite")]


def test_every_sqlite_query_compiles_against_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "compile.db"
    _open(path)
    conn = sqlite3.connect(path)
    try:
        for name, sql in load_queries("conveyor.backends.sqlite").items():
            params = {p: None for p in re.findall(r":([a-z_]+)", sql)}
            try:
                conn.execute("EXPLAIN " + sql, params)
            except sqlite3.Error as exc:
                pytest.fail(f"{name}.sql does not compile: {exc}")
    finally:
        conn.close()
