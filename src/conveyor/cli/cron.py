"""``conveyor cron`` (list schedules, next and last run) and ``conveyor scheduler`` (run one)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

import click
from rich.console import Console
from rich.table import Table

from conveyor.backends.base import GetScheduleRuns
from conveyor.cli.common import EXIT_USAGE, CliError, CliState, pass_state
from conveyor.model import to_datetime
from conveyor.schedule import next_due
from conveyor.scheduler.runner import SchedulerProcess


@click.command(short_help="List cron schedules with their next and last run.")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def cron(state: CliState, app_spec: str | None, as_json: bool) -> None:
    """Every schedule of MODULE:APP: expression, timezone, task, next run and last run."""
    spec = app_spec or state.app_spec
    if not spec:
        raise CliError("cron needs the app: MODULE:APP (or --app / CONVEYOR_APP)", EXIT_USAGE)
    app = state.app(spec=spec)
    schedules = list(app.schedules.values())
    runs = {r.name: r for r in app.backend.execute(GetScheduleRuns([s.name for s in schedules]))}
    now = time.time()
    rows = []
    for schedule in schedules:
        last = runs.get(schedule.name)
        rows.append({
            "name": schedule.name, "cron": schedule.expression, "timezone": schedule.timezone,
            "task": schedule.task_name, "misfire": schedule.misfire,
            "next_run": _iso(next_due(schedule, now)),
            "last_run": _iso(last.last_due_at) if last and last.last_task_id else None,
            "last_task_id": last.last_task_id if last else None,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Schedules")
    for column in ("NAME", "CRON", "TZ", "TASK", "NEXT RUN", "LAST RUN", "LAST TASK"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["cron"], row["timezone"], row["task"], row["next_run"],
                      row["last_run"] or "-", row["last_task_id"] or "-")
    if not rows:
        table.add_row("(no schedules)", "", "", "", "", "", "")
    Console().print(table)


@click.command(short_help="Run the cron scheduler (any number may run; one leads).")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--leader-ttl", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds a leader's lock lives without renewal: the takeover time.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@pass_state
def scheduler(state: CliState, app_spec: str | None, leader_ttl: float, log_level: str) -> None:
    """Enqueue the due runs of MODULE:APP's schedules while this process leads."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    spec = app_spec or state.app_spec
    if not spec:
        raise CliError("scheduler needs the app: MODULE:APP (or --app / CONVEYOR_APP)",
                       EXIT_USAGE)
    app = state.app(spec=spec)
    process = SchedulerProcess(app, leader_ttl=leader_ttl)
    main_thread = threading.current_thread() is threading.main_thread()
    click.get_current_context().exit(process.run(install_signal_handlers=main_thread))


def _iso(epoch: float) -> str:
    moment = to_datetime(epoch)
    assert moment is not None
    return moment.isoformat().replace("+00:00", "Z")
