"""``conveyor migrate``: bring the backend's schema up to date, as a release step.

Backends migrate on first use by default; deployments that open them with ``migrate=False``
(so application processes never run DDL) run this command instead. A backend without
migrations of its own (SQLite builds its schema when it opens the file) is simply opened.
"""

from __future__ import annotations

import click

from conveyor.cli.common import EXIT_ERROR, CliError, CliState, pass_state


@click.command(short_help="Apply pending schema migrations (PostgreSQL).")
@click.option("--check", is_flag=True,
              help="Apply nothing; exit 1 if migrations are pending (for deploy pipelines).")
@click.option("--app", "app_spec", metavar="MODULE:APP", envvar="CONVEYOR_APP",
              help="The app (may also come before the command).")
@click.option("--url", metavar="URL", envvar="CONVEYOR_URL", help="Backend URL.")
@pass_state
def migrate(state: CliState, check: bool, app_spec: str | None, url: str | None) -> None:
    """Apply the schema migrations this version of Conveyor needs, each exactly once (many
    processes may run it at once)."""
    backend = state.app(spec=app_spec, url=url).backend
    apply = getattr(backend, "migrate", None)
    pending = getattr(backend, "pending_migrations", None)
    if apply is None or pending is None:
        from conveyor.backends.base import Now

        backend.execute(Now())  # opening it builds its schema
        click.echo("schema up to date (this backend builds its schema when it opens)")
        return
    if check:
        missing = pending()
        if missing:
            raise CliError(f"pending migrations: {', '.join(map(str, missing))}", EXIT_ERROR)
        click.echo("schema up to date")
        return
    applied = apply()
    if applied:
        click.echo(f"applied migrations: {', '.join(map(str, applied))}")
    else:
        click.echo("schema up to date: nothing to apply")
