"""``conveyor bench``: the BENCHMARKS.md workloads, beside a bare loop on the same store."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.command(short_help="Run the BENCHMARKS.md workloads beside a bare loop.")
@click.option("-n", "--tasks", "n", type=click.IntRange(min=100), default=20_000,
              show_default=True, help="Tasks per throughput run.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs of each workload; medians and ranges are reported.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Slots per worker process.")
@click.option("--kind", type=click.Choice(["sync", "async"]), default="sync", show_default=True,
              help="No-op handler as a plain def (thread pool) or an async def (event loop).")
@click.option("--url", metavar="URL", default=None,
              help="Backend to measure (default: a fresh SQLite file per run). On a server "
                   "each run uses a queue of its own.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON figures to this file.")
def bench(n: int, repeats: int, concurrency: int, kind: str, url: str | None, as_json: bool,
          save: Path | None) -> None:
    """The BENCHMARKS.md workloads: throughput (enqueue, drain with 1 and 2 processes, end to
    end), pickup latency, priority under backlog and delayed precision."""
    from conveyor import bench as workloads

    console = Console(stderr=True)
    report = workloads.run(n=n, repeats=repeats, concurrency=concurrency, kind=kind, url=url,
                           log=lambda line: console.print(f"[dim]{line}[/dim]"))
    if save is not None:
        save.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    Console().print(table(report))


def table(report: dict[str, object]) -> Table:
    figures = report["figures"]
    ratios = report["ratios"]
    latency = report["latency_ms"]
    priority = report["priority_ms"]
    delayed = report["delayed_ms"]
    assert isinstance(figures, dict) and isinstance(ratios, dict) and isinstance(latency, dict)
    assert isinstance(priority, dict) and isinstance(delayed, dict)
    from conveyor.bench import median_range

    store = report["store"]
    out = Table(title=f"Conveyor on {store}: {report['n']:,} no-op {report['kind']} tasks, "
                      f"median of {report['repeats']} (min-max)")
    out.add_column("workload")
    out.add_column("tasks/s", justify="right")
    out.add_column(f"vs bare {store} loop", justify="right")
    out.add_row(f"bare {store} loop: enqueue", median_range(figures["baseline_enqueue"]), "1.00")
    out.add_row(f"bare {store} loop: drain", median_range(figures["baseline_drain"]), "1.00")
    out.add_row("enqueue (enqueue_many, 1,000 per call)", median_range(figures["enqueue"]),
                f"{ratios['enqueue_vs_baseline']:.3f}")
    out.add_row("drain, 1 worker process", median_range(figures["drain_1"]),
                f"{ratios['drain_1_vs_baseline']:.3f}")
    out.add_row("drain, 2 worker processes", median_range(figures["drain_2"]),
                f"{ratios['drain_2_vs_baseline']:.3f}")
    out.add_row("end to end, 2 worker processes", median_range(figures["e2e_2"]), "")
    out.add_row("pickup latency p50 / p95 / p99 / max (ms)",
                " / ".join(f"{latency[k]:.1f}" for k in ("p50", "p95", "p99", "max")), "")
    out.add_row("priority 9 behind 10,000 priority 1: wait p50 / max (ms)",
                f"{priority['p50']:.1f} / {priority['max']:.1f}",
                f"lows before: {priority['lows_before_first']:.0f} / "
                f"{priority['lows_before_last']:.0f}")
    out.add_row("delayed 1-3 s: start - due p50 / p99 / max (ms)",
                " / ".join(f"{delayed[k]:.1f}" for k in ("p50", "p99", "max")),
                f"early: {delayed['early']:.0f}")
    return out
