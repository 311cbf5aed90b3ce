"""``conveyor queue list|pause|resume|purge``: operating on whole queues."""

from __future__ import annotations

import sys

import click
from rich.table import Table
from rich.text import Text

from conveyor.cli.common import EXIT_USAGE, CliError, CliState, console, pass_state, print_json
from conveyor.cli.render import STATE_COLUMNS, STATE_STYLES, age
from conveyor.model import TaskState

PURGEABLE = [s.value for s in TaskState if s != TaskState.RUNNING]


@click.group(short_help="List, pause, resume or purge queues.")
def queue() -> None:
    """List queues, pause or resume claims from a queue, or purge its tasks in one state."""


@queue.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the queues as JSON.")
@pass_state
def list_queues(state: CliState, as_json: bool) -> None:
    """Every known queue: tasks per state, the oldest pending task's age, paused or not."""
    stats = state.app().stats()
    if as_json:
        print_json([
            {"queue": name, "paused": q.paused, "counts": {s.value: q.count(s) for s in TaskState},
             "oldest_pending_age": q.oldest_pending_age}
            for name, q in sorted(stats.queues.items())
        ])
        return
    table = Table(title="Queues", title_justify="left")
    table.add_column("QUEUE", style="bold")
    table.add_column("PAUSED")
    for s in STATE_COLUMNS:
        table.add_column(s.value, justify="right", style=STATE_STYLES[s])
    table.add_column("OLDEST PENDING", justify="right")
    for name, q in sorted(stats.queues.items()):
        table.add_row(Text(name), Text("paused", style="red") if q.paused else "",
                      *(str(q.count(s)) for s in STATE_COLUMNS), age(q.oldest_pending_age))
    console().print(table)


@queue.command("pause")
@click.argument("names", nargs=-1, required=True, metavar="QUEUE...")
@pass_state
def pause(state: CliState, names: tuple[str, ...]) -> None:
    """Stop workers from claiming from these queues (tasks stay; running ones finish)."""
    app = state.app()
    for name in names:
        app.pause(name)
        click.echo(f"paused queue {name!r}")


@queue.command("resume")
@click.argument("names", nargs=-1, required=True, metavar="QUEUE...")
@pass_state
def resume(state: CliState, names: tuple[str, ...]) -> None:
    """Let workers claim from these queues again."""
    app = state.app()
    for name in names:
        app.resume(name)
        click.echo(f"resumed queue {name!r}")


@queue.command("purge")
@click.argument("name", metavar="QUEUE")
@click.option("--state", "task_state", type=click.Choice(PURGEABLE, case_sensitive=False),
              default="PENDING", show_default=True, help="Which tasks to delete.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def purge(state: CliState, name: str, task_state: str, yes: bool) -> None:
    """Delete the tasks of QUEUE in one state. Asks first unless --yes; refuses without a
    terminal."""
    what = f"every {task_state.upper()} task of queue {name!r}"
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to delete {what} without --yes", EXIT_USAGE)
        click.confirm(f"Delete {what}?", abort=True)
    count = state.app().purge(name, task_state)
    click.echo(f"purged {count} task(s) ({task_state.upper()}) from queue {name!r}")
