"""``conveyor workers``: the registered worker processes and how busy each one is."""

from __future__ import annotations

import click
import msgspec

from conveyor.cli.common import CliState, console, pass_state, print_json
from conveyor.cli.render import workers_table


@click.command(short_help="List worker processes with their load.")
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
@pass_state
def workers(state: CliState, as_json: bool) -> None:
    """Every worker that heartbeated recently: host, pid, queues, busy slots, utilization."""
    found = state.app().workers()
    if as_json:
        print_json([{**msgspec.to_builtins(w), "utilization": w.utilization} for w in found])
        return
    console().print(workers_table(found))
