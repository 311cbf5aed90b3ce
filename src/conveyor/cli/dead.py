"""``conveyor dead list|requeue|purge``: the dead-letter queue, where tasks wait for a human."""

from __future__ import annotations

import sys

import click

from conveyor.app import Conveyor
from conveyor.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    CliError,
    CliState,
    console,
    pass_state,
    print_json,
)
from conveyor.cli.render import dead_table, task_json
from conveyor.model import TaskState

PAGE = 1000


@click.group(short_help="List, requeue or purge the dead-letter queue.")
def dead() -> None:
    """List, requeue or purge dead tasks (retries exhausted, not retryable, worker lost)."""


@dead.command("list")
@click.option("--queue", "-q", help="Only this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
@pass_state
def list_dead(state: CliState, queue: str | None, limit: int, as_json: bool) -> None:
    """Dead tasks, oldest first, with the last line of each one's error."""
    tasks = state.app().dead(queue=queue, limit=limit)
    if as_json:
        print_json([task_json(t) for t in tasks])
    else:
        console().print(dead_table(tasks))


@dead.command("requeue")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every dead task (of --queue, if given).")
@click.option("--queue", "-q", help="With --all: only this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print the requeued ids as JSON.")
@pass_state
def requeue(state: CliState, ids: tuple[str, ...], all_: bool, queue: str | None,
            as_json: bool) -> None:
    """Send dead tasks back to PENDING with their attempts reset.

    Only DEAD tasks are touched: a DONE or CANCELLED id given here by mistake is reported, not
    run again.
    """
    if bool(ids) == all_:
        raise CliError("give task ids or --all, not both and not neither", EXIT_USAGE)
    if queue and not all_:
        raise CliError("--queue only applies with --all", EXIT_USAGE)
    app = state.app()
    moved = _requeue_all(app, queue) if all_ else _requeue_ids(app, list(ids))
    if as_json:
        print_json({"requeued": moved})
    else:
        click.echo(f"requeued {len(moved)} task(s)")
    if not all_ and len(moved) < len(ids):
        click.get_current_context().exit(EXIT_ERROR)


def _requeue_ids(app: Conveyor, ids: list[str]) -> list[str]:
    dead_ids = []
    for task_id in ids:
        info = app.get(task_id)
        if info is None:
            click.echo(f"error: no task with id {task_id!r}", err=True)
        elif info.state != TaskState.DEAD:
            click.echo(f"error: task {task_id} is {info.state}, not in the dead-letter queue",
                       err=True)
        else:
            dead_ids.append(task_id)
    return app.requeue(dead_ids) if dead_ids else []


def _requeue_all(app: Conveyor, queue: str | None) -> list[str]:
    """Page through the DLQ; requeued tasks leave it, so every page starts at the front."""
    moved: list[str] = []
    while page := app.dead(queue=queue, limit=PAGE):
        done = app.requeue([t.id for t in page])
        moved.extend(done)
        if not done:
            break
    return moved


@dead.command("purge")
@click.option("--queue", "-q", help="Only this queue (default: every queue).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def purge(state: CliState, queue: str | None, yes: bool) -> None:
    """Delete dead tasks for good. Asks first unless --yes; refuses without a terminal."""
    where = f"queue {queue!r}" if queue else "every queue"
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to purge the dead tasks of {where} without --yes",
                           EXIT_USAGE)
        click.confirm(f"Delete every dead task of {where}?", abort=True)
    count = state.app().purge(queue, TaskState.DEAD)
    click.echo(f"purged {count} dead task(s) from {where}")
