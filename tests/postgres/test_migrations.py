"""The schema is the library's: numbered migrations applied once, automatically or by
``conveyor migrate``, and every query of the backend is valid against it."""

from __future__ import annotations

import re
import threading

import psycopg
import pytest
from click.testing import CliRunner

from conveyor import ConfigurationError
from conveyor.backends.base import Now
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
