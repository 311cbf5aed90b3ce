"""The schema is the library's: numbered migrations applied once, automatically or by
``conveyor migrate``, and every query of the backend is valid against it."""

from __future__ import annotations

import re
import threading

import psycopg
import pytest
from click.testing import CliRunner

from conveyor import ConfigurationError
from conveyor.backends.base import Claim, Complete, Completion, ListTasks, Now
from conveyor.backends.postgres import schema
from conveyor.backends.postgres.backend import PostgresBackend
from conveyor.backends.postgres.plans import QUERIES
from conveyor.cli.main import cli
from postgres_server import fresh_url


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM conveyor_migrations ORDER BY 1")]


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [v for v, _ in schema.MIGRATIONS] == list(range(1, len(schema.MIGRATIONS) + 1))


def test_first_use_migrates_once_even_with_many_processes_starting() -> None:
    url = fresh_url(migrated=False)
    backends = [PostgresBackend(url) for _ in range(4)]
    errors: list[BaseException] = []

    def first_use(backend: PostgresBackend) -> None:
        try:
            backend.execute(Now())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(b,)) for b in backends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for backend in backends:
        backend.close()
    assert errors == []
    assert _versions(url) == [v for v, _ in schema.MIGRATIONS]


def test_migrate_false_refuses_an_old_schema_and_the_cli_migrates_it() -> None:
    url = fresh_url(migrated=False)
    backend = PostgresBackend(url, migrate=False)
    try:
        with pytest.raises(ConfigurationError, match="conveyor migrate"):
            backend.execute(Now())
        runner = CliRunner()
        checked = runner.invoke(cli, ["--url", url, "migrate", "--check"])
        assert checked.exit_code == 1 and "pending migrations: 1" in checked.output
        applied = runner.invoke(cli, ["--url", url, "migrate"])
        assert applied.exit_code == 0, applied.output
        assert "applied migrations: 1" in applied.output
        again = runner.invoke(cli, ["--url", url, "migrate"])
        assert "nothing to apply" in again.output
        assert runner.invoke(cli, ["--url", url, "migrate", "--check"]).exit_code == 0
        assert isinstance(backend.execute(Now()), float)
    finally:
        backend.close()


def test_every_query_is_valid_against_the_schema(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name, sql in QUERIES.items():
            params = {p: None for p in re.findall(rb"%\(([a-z_]+)\)s", sql)}
            try:
                if re.search(rb"^COPY ", sql, re.MULTILINE):  # not explainable: copy no rows
                    with conn.transaction(force_rollback=True), conn.cursor().copy(sql):
                        pass
                    continue
                conn.execute(b"EXPLAIN " + sql, {k.decode(): v for k, v in params.items()})
            except psycopg.Error as exc:
                pytest.fail(f"{name}.sql: {exc}")


def test_both_url_schemes_open_the_postgres_backend(pg_url: str) -> None:
    from conveyor.backends import open_backend

    for url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
        backend = open_backend(url)
        try:
            assert isinstance(backend, PostgresBackend)
            assert isinstance(backend.execute(Now()), float)
        finally:
            backend.close()


OLD_ROWS = """
INSERT INTO conveyor_tasks (id, name, queue, payload, priority, state, max_retries, created_at,
                            scheduled_at, result_ttl_seconds, completed_at, expires_at, result)
SELECT 'task-' || lpad(g::text, 3, '0'), 'noop', 'default', '\\x9290'::bytea, 0,
       (ARRAY['PENDING', 'DONE', 'DEAD', 'SCHEDULED'])[1 + g % 4], 3, g,
       CASE WHEN g % 4 = 3 THEN 1e10 ELSE g END, 86400,
       CASE WHEN g % 4 IN (1, 2) THEN g END, CASE WHEN g % 4 = 1 THEN g + 86400 END,
       CASE WHEN g % 4 = 1 THEN '\\xc3'::bytea END
FROM generate_series(1, 40) AS g
"""


def test_upgrade_from_0004_keeps_every_task_and_its_order() -> None:
    """A store written by the version-4 schema (primary key on seq, a (queue, state) index)
    upgrades in place to 0005 (primary key on id): every row, state and result is kept, listings
    keep the enqueue order, ids stay unique, and the upgraded store claims and completes."""
    url = fresh_url(migrated=False)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(schema._CREATE_BOOKKEEPING)
        for version, script in schema.MIGRATIONS[:4]:
            conn.execute(script.encode())
            conn.execute("INSERT INTO conveyor_migrations (version) VALUES (%s)", (version,))
        conn.execute(OLD_ROWS)
    before = _snapshot(url)
    backend = PostgresBackend(url)
    try:
        backend.execute(Now())
        assert _versions(url) == [v for v, _ in schema.MIGRATIONS]
        assert _snapshot(url) == before
        listed = backend.execute(ListTasks(limit=100))
        assert [row.id for row in listed] == [f"task-{g:03d}" for g in range(1, 41)]
        dead = backend.execute(ListTasks(queue="default", state="DEAD", limit=100))
        assert [row.id for row in dead] == [f"task-{g:03d}" for g in range(2, 41, 4)]
        claimed = backend.execute(Claim("w", ["default"], 100, 30.0))
        assert sorted(t.id for t in claimed) == [f"task-{g:03d}" for g in range(4, 41, 4)]
        lost = backend.execute(Complete([Completion(t.id, t.lease_token, None) for t in claimed]))
        assert lost == []
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO conveyor_tasks (id, name, queue, payload, priority, state, "
                         "max_retries, created_at, scheduled_at, result_ttl_seconds) "
                         "VALUES ('task-001', 'noop', 'default', '', 0, 'PENDING', 3, 0, 0, 1)")
    finally:
        backend.close()


def _snapshot(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT seq, id, state, priority, scheduled_at, completed_at, "
                            "expires_at, result FROM conveyor_tasks ORDER BY seq").fetchall()


def test_the_hot_path_indexes_are_few() -> None:
    """Each index whose predicate a row matches takes an entry at every claim and completion
    (a change of state is never a HOT update): keep the count where 0005 left it."""
    url = fresh_url()
    with psycopg.connect(url) as conn:
        indexes = dict(conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'conveyor_tasks'"
        ).fetchall())
    unconditional = sorted(name for name, text in indexes.items() if " WHERE " not in text)
    assert unconditional == ["conveyor_tasks_pkey", "conveyor_tasks_seq"], indexes
    assert "UNIQUE" not in indexes["conveyor_tasks_seq"]
    assert "(id)" in indexes["conveyor_tasks_pkey"]
