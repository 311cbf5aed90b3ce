"""The ``conveyor`` group: global options, then one subcommand per module."""

from __future__ import annotations

import click

from conveyor import __version__
from conveyor.cli.bench import bench
from conveyor.cli.common import CliState, ConveyorGroup
from conveyor.cli.cron import cron, scheduler
from conveyor.cli.dashboard import dashboard
from conveyor.cli.dead import dead
from conveyor.cli.demo import demo
from conveyor.cli.health import alerts, health
from conveyor.cli.metrics import metrics
from conveyor.cli.migrate import migrate
from conveyor.cli.queues import queue
from conveyor.cli.stats import stats
from conveyor.cli.tasks import delete_tasks, enqueue, inspect_task
from conveyor.cli.worker import worker
from conveyor.cli.workers import workers


@click.group(cls=ConveyorGroup, context_settings={"auto_envvar_prefix": "CONVEYOR",
                                                  "help_option_names": ["-h", "--help"]})
@click.option("--app", "app_spec", metavar="MODULE:APP", envvar="CONVEYOR_APP",
              help="The Conveyor app, e.g. myproject.tasks:app [env CONVEYOR_APP].")
@click.option("--url", metavar="URL", envvar="CONVEYOR_URL",
              help="Backend URL; overrides the app's [env CONVEYOR_URL].")
@click.version_option(__version__, prog_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, url: str | None) -> None:
    """Conveyor: a distributed task queue. Run workers, enqueue and inspect tasks."""
    ctx.obj = CliState(app_spec=app_spec, url=url)


cli.add_command(worker)
cli.add_command(workers)
cli.add_command(enqueue)
cli.add_command(inspect_task)
cli.add_command(delete_tasks)
cli.add_command(stats)
cli.add_command(dead)
cli.add_command(queue)
cli.add_command(metrics)
cli.add_command(health)
cli.add_command(alerts)
cli.add_command(demo)
cli.add_command(bench)
cli.add_command(migrate)
cli.add_command(cron)
cli.add_command(scheduler)
cli.add_command(dashboard)


def main() -> None:
    """Console-script entry point (``conveyor = "conveyor.cli.main:main"``)."""
    cli.main(prog_name="conveyor")
