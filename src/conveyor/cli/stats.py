"""``conveyor stats``: queue depth per state and worker utilization, once or live."""

from __future__ import annotations

import json
import time

import click
from rich.live import Live

from conveyor.app import Conveyor
from conveyor.cli.common import CliState, console, pass_state, print_json
from conveyor.cli.render import stats_json, stats_view
from conveyor.model import Stats


class _Windowed:
    """The app's stats over the chosen window (one object for the loops below)."""

    def __init__(self, app: Conveyor, window: float) -> None:
        self.app, self.window = app, window

    def stats(self) -> Stats:
        return self.app.stats(window=self.window)


@click.command(short_help="Queue depth per state and worker utilization.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (with --watch: one JSON document per line).")
@click.option("--watch", "-w", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", "-n", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--window", type=click.FloatRange(min=1.0), default=300.0, show_default=True,
              help="Seconds of history behind the rates and latency percentiles.")
@pass_state
def stats(state: CliState, as_json: bool, watch: bool, interval: float, window: float) -> None:
    """Tasks per queue and state, the oldest pending task's age; per queue over the window:
    enqueue / success / failure rates, dead tasks per minute, wait and latency p50/p95/p99,
    utilization of the workers serving it; and every worker's load."""
    app = _Windowed(state.app(), window)
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
