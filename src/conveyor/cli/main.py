"""The ``conveyor`` group: global options, then one subcommand per module.

Subcommands are imported when they are run, not when ``conveyor`` starts: a worker process
would otherwise load the dashboard, Prometheus, rich and the benchmark code before its first
task (about a third of its start-up).
"""

from __future__ import annotations

import importlib

import click

from conveyor import __version__
from conveyor.cli.common import CliState, ConveyorGroup, accept_global_options

COMMANDS = {
    "worker": "conveyor.cli.worker:worker",
    "workers": "conveyor.cli.workers:workers",
    "enqueue": "conveyor.cli.tasks:enqueue",
    "inspect": "conveyor.cli.tasks:inspect_task",
    "delete": "conveyor.cli.tasks:delete_tasks",
    "stats": "conveyor.cli.stats:stats",
    "dead": "conveyor.cli.dead:dead",
    "queue": "conveyor.cli.queues:queue",
    "metrics": "conveyor.cli.metrics:metrics",
    "health": "conveyor.cli.health:health",
    "alerts": "conveyor.cli.health:alerts",
    "demo": "conveyor.cli.demo:demo",
    "bench": "conveyor.cli.bench:bench",
    "migrate": "conveyor.cli.migrate:migrate",
    "cron": "conveyor.cli.cron:cron",
    "scheduler": "conveyor.cli.cron:scheduler",
    "dashboard": "conveyor.cli.dashboard:dashboard",
}
"""Command name -> ``module:attribute`` of its click command."""
OWN_BACKEND = {"demo", "bench"}
"""Commands that open a store of their own (a throwaway SQLite file, a benchmark's): the
global ``--app`` and ``--url`` are not theirs to take after the command name."""


class LazyGroup(ConveyorGroup):
    """The root group, importing each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command) and command.name == cmd_name, target
        return command if cmd_name in OWN_BACKEND else accept_global_options(command)


@click.group(cls=LazyGroup, context_settings={"auto_envvar_prefix": "CONVEYOR",
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


def main() -> None:
    """Console-script entry point (``conveyor = "conveyor.cli.main:main"``)."""
    cli.main(prog_name="conveyor")
