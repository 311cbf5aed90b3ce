"""``conveyor enqueue``, ``inspect`` and ``delete``: tasks one by one, by name or by id."""

from __future__ import annotations

import sys
from typing import Any

import click

from conveyor.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    CliError,
    CliState,
    console,
    parse_json,
    pass_state,
    print_json,
)
from conveyor.cli.render import task_json, task_view


@click.command()
@click.argument("name")
@click.option("--args", "args_json", metavar="JSON",
              help="Positional arguments as a JSON array, e.g. '[1, 2]'.")
@click.option("--kwargs", "kwargs_json", metavar="JSON",
              help='Keyword arguments as a JSON object, e.g. \'{"to": "a@b.c"}\'.')
@click.option("--queue", "-q", help="Queue (default: the task's).")
@click.option("--priority", "-p", type=int, help="0-9, 9 most urgent (default: the task's).")
@click.option("--delay", type=float, help="Seconds before the task is due.")
@click.option("--idempotency-key", help="Deduplicates: a second enqueue returns the first task.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--app", "app_spec", metavar="MODULE:APP", envvar="CONVEYOR_APP",
              help="The app (may also come before the command).")
@click.option("--url", metavar="URL", envvar="CONVEYOR_URL", help="Backend URL.")
@pass_state
def enqueue(state: CliState, name: str, args_json: str | None, kwargs_json: str | None,
            queue: str | None, priority: int | None, delay: float | None,
            idempotency_key: str | None, as_json: bool, app_spec: str | None,
            url: str | None) -> None:
    """Enqueue the registered task NAME and print its id.

    Needs --app: the task name is checked against the app's registry so a typo fails here,
    not later in a worker's dead-letter queue.
    """
    args = parse_json(args_json, "--args", list) or []
    kwargs = parse_json(kwargs_json, "--kwargs", dict) or {}
    options: dict[str, Any] = {
        key: value for key, value in (
            ("queue", queue), ("priority", priority), ("delay", delay),
            ("idempotency_key", idempotency_key),
        ) if value is not None
    }
    app = state.app(require_tasks=True, spec=app_spec, url=url)
    handle = app.enqueue(name, args, kwargs, **options)
    if as_json:
        print_json({"id": handle.id, "name": name, "created": handle.created})
        return
    click.echo(handle.id)
    if not handle.created:
        click.echo("note: a task with this idempotency key already existed; that is its id",
                   err=True)


@click.command("inspect")
@click.argument("task_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@pass_state
def inspect_task(state: CliState, task_id: str, as_json: bool) -> None:
    """Show every field of task ID, each attempt's error, and the last traceback."""
    info = state.app().get(task_id)
    if info is None:
        raise CliError(f"no task with id {task_id!r} (never enqueued, pruned or purged)",
                       EXIT_ERROR)
    if as_json:
        print_json(task_json(info))
    else:
        console().print(task_view(info))


@click.command("delete")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the deleted ids as JSON.")
@pass_state
def delete_tasks(state: CliState, ids: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Delete tasks by id, in any state but RUNNING (delete those once they have finished).

    Asks first unless --yes; refuses without a terminal. Exits 1 when any id was not deleted
    (unknown, or running), each reported on stderr.
    """
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to delete {len(ids)} task(s) without --yes", EXIT_USAGE)
        click.confirm(f"Delete {len(ids)} task(s) for good?", abort=True)
    app = state.app()
    deleted = app.delete(list(ids))
    kept = [task_id for task_id in dict.fromkeys(ids) if task_id not in set(deleted)]
    for task_id in kept:
        info = app.get(task_id)
        why = "no such task" if info is None else f"it is {info.state}"
        click.echo(f"error: task {task_id} not deleted: {why}", err=True)
    if as_json:
        print_json({"deleted": deleted})
    else:
        click.echo(f"deleted {len(deleted)} task(s)")
    if kept:
        click.get_current_context().exit(EXIT_ERROR)
