"""``conveyor health`` (check the alert thresholds now) and ``conveyor alerts --prometheus``
(the same thresholds as Prometheus alerting rules)."""

from __future__ import annotations

from pathlib import Path

import click

from conveyor.cli.common import EXIT_ERROR, EXIT_USAGE, CliError, CliState, pass_state, print_json
from conveyor.metrics.alerts import evaluate, prometheus_rules


@click.command(short_help="Exit 1 and name each breached alert threshold.")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--window", type=click.FloatRange(min=1.0), default=300.0, show_default=True,
              help="Seconds of history behind dead-per-minute and p99.")
@click.option("--json", "as_json", is_flag=True, help="Print the breaches as JSON.")
@pass_state
def health(state: CliState, app_spec: str | None, window: float, as_json: bool) -> None:
    """Check MODULE:APP's alert thresholds (app.alert(...)) against the backend now.

    Exit codes: 0 no threshold breached; 1 at least one (each printed); 2 usage or import
    error; 3 backend unreachable."""
    if not (app_spec or state.app_spec):
        raise CliError("health needs the app: MODULE:APP (or --app / CONVEYOR_APP)", EXIT_USAGE)
    app = state.app(spec=app_spec)
    stats = app.stats(window=window)
    breaches = evaluate(app.alerts, stats)
    if as_json:
        print_json({"healthy": not breaches, "rules": len(app.alerts),
                    "breaches": [b.to_json() for b in breaches]})
    elif breaches:
        for breach in breaches:
            click.echo(f"BREACH {breach}")
    else:
        click.echo(f"ok: {len(app.alerts)} alert rule(s), {len(stats.queues)} queue(s), "
                   f"no threshold breached")
    if breaches:
        click.get_current_context().exit(EXIT_ERROR)


@click.command(short_help="Write the alert thresholds as Prometheus alerting rules.")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--prometheus", is_flag=True, required=True,
              help="Prometheus alerting rules (YAML); the only format so far.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout.")
@click.option("--window", default="5m", show_default=True,
              help="PromQL range for rates and p99.")
@click.option("--for", "for_", default="2m", show_default=True,
              help="How long a condition must hold before the alert fires.")
@pass_state
def alerts(state: CliState, app_spec: str | None, prometheus: bool, output: Path | None,
           window: str, for_: str) -> None:
    """MODULE:APP's app.alert(...) thresholds as a Prometheus rules file, over the metric
    names `conveyor metrics` exports."""
    if not (app_spec or state.app_spec):
        raise CliError("alerts needs the app: MODULE:APP (or --app / CONVEYOR_APP)", EXIT_USAGE)
    app = state.app(spec=app_spec)
    text = prometheus_rules(app.alerts, window=window, for_=for_)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(app.alerts)} alert rule(s) to {output}", err=True)
