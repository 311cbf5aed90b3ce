"""``conveyor demo``: a guided run on a throwaway SQLite file."""

from __future__ import annotations

import click

from conveyor.cli.common import console


@click.command(short_help="A 5-second tour on a throwaway SQLite file.")
@click.option("--db", type=click.Path(dir_okay=False), metavar="PATH",
              help="SQLite file to use (default: a new one in a temporary directory).")
def demo(db: str | None) -> None:
    """Show priorities, delays, retries and the dead-letter queue in ~5 seconds, no server."""
    from conveyor.demo import run_demo  # its tasks register on import; only when asked

    click.get_current_context().exit(run_demo(db, console()))
