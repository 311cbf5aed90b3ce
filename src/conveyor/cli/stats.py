"""``conveyor stats``: queue depth per state and worker utilization, once or live."""

from __future__ import annotations

import json
import time

import click
from rich.live import Live

from conveyor.cli.common import CliState, console, pass_state, print_json
from conveyor.cli.render import stats_json, stats_view


@click.command(short_help="Queue depth per state and worker utilization.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (with --watch: one JSON document per line).")
@click.option("--watch", "-w", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", "-n", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@pass_state
def stats(state: CliState, as_json: bool, watch: bool, interval: float) -> None:
    """Tasks per queue and state, the oldest pending task's age, and every worker's load."""
    app = state.app()
    if not watch:
        if as_json:
            print_json(stats_json(app.stats()))
        else:
            console().print(stats_view(app.stats()))
        return
    try:
        if as_json:
            while True:
                click.echo(json.dumps(stats_json(app.stats()), default=str))
                time.sleep(interval)
        with Live(stats_view(app.stats()), console=console(),
                  refresh_per_second=max(1.0, 1 / interval)) as live:
            while True:
                time.sleep(interval)
                live.update(stats_view(app.stats()))
    except KeyboardInterrupt:
        return
