"""``conveyor demo``: the features that matter, visible in a few seconds, with no server.

The tasks live in this importable module (not inside a function) so a process pool, or
``conveyor worker conveyor.demo:app``, can import them by name like any user's tasks.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from conveyor.app import Conveyor
from conveyor.backends.base import GetTasks
from conveyor.cli.render import STATE_COLUMNS, STATE_STYLES, last_line, stats_view
from conveyor.context import current_task
from conveyor.inspect import task_info
from conveyor.model import Stats, TaskInfo, TaskState
from conveyor.retry import Retry
from conveyor.task import TaskHandle
from conveyor.worker.worker import Worker

app = Conveyor("sqlite:///conveyor-demo.db", lease=10.0)
QUEUES = ("payments", "email", "reports")
BACKLOG = 16
REMINDER_DELAY = 1.5
TIMEOUT = 30.0


@app.task(queue="email")
def send_email(to: str, subject: str) -> str:
    time.sleep(0.08)
    return f"sent {subject!r} to {to}"


@app.task(queue="reports", priority=3)
def render_report(report_id: int) -> dict[str, int]:
    time.sleep(0.3)
    return {"report": report_id, "pages": 3 + report_id % 5}


@app.task(queue="payments", priority=7)
def charge(order_id: int, cents: int) -> str:
    time.sleep(0.05)
    return f"order {order_id}: charged {cents / 100:.2f} EUR"


@app.task(queue="payments", priority=7, max_retries=4,
          retry=Retry.exponential(base=0.1, factor=2.0, max_delay=1.0, jitter=False))
def capture_payment(order_id: int) -> str:
    """Fails twice (a flaky gateway), then succeeds: retries with backoff absorb the flakiness."""
    attempt = current_task().attempt
    if attempt < 3:
        raise ConnectionError(f"payment gateway timed out (attempt {attempt})")
    return f"order {order_id}: captured on attempt {attempt}"


@app.task(queue="payments", max_retries=1, retry=Retry.fixed(0.1))
def reconcile_ledger(day: str) -> None:
    """Always fails: after its one retry it lands in the dead-letter queue for a human."""
    raise ValueError(f"ledger for {day} does not balance: off by 0.01 EUR")


@dataclass
class Scenario:
    """The handles of what the demo enqueued, so the story is told from their real timestamps."""

    backlog: list[TaskHandle[dict[str, int]]] = field(default_factory=list)
    others: list[TaskHandle[Any]] = field(default_factory=list)
    urgent: TaskHandle[dict[str, int]] | None = None
    waiting_when_urgent: int = 0
    flaky: TaskHandle[str] | None = None
    dead: TaskHandle[None] | None = None
    reminder: TaskHandle[str] | None = None

    @property
    def ids(self) -> list[str]:
        handles: list[TaskHandle[Any] | None] = [*self.backlog, *self.others, self.urgent]
        return [h.id for h in handles if h is not None]


def enqueue_initial(scenario: Scenario) -> None:
    scenario.backlog = render_report.enqueue_many([((n,), {}) for n in range(1, BACKLOG + 1)])
    emails = send_email.enqueue_many(
        [((f"user{n}@example.com", "Your receipt"), {}) for n in range(1, 9)])
    charges = charge.enqueue_many([((1000 + n, 1999 + n * 100), {}) for n in range(4)])
    scenario.flaky = capture_payment.enqueue(2001)
    scenario.dead = reconcile_ledger.enqueue("2026-11-30")
    scenario.reminder = send_email.options(delay=REMINDER_DELAY).enqueue(
        "ops@example.com", "Reminder: ledger review")
    scenario.others = [*emails, *charges, scenario.flaky, scenario.dead, scenario.reminder]


def read(ids: list[str]) -> dict[str, TaskInfo]:
    return {row.id: task_info(row) for row in app.backend.execute(GetTasks(ids))}


def progress_view(infos: dict[str, TaskInfo], total: int, elapsed: float) -> RenderableType:
    table = Table(title=f"Demo tasks after {elapsed:.1f}s", title_justify="left")
    table.add_column("QUEUE", style="bold")
    for state in STATE_COLUMNS:
        table.add_column(state.value, justify="right", style=STATE_STYLES[state])
    per_queue: dict[str, Counter[str]] = {q: Counter() for q in QUEUES}
    for info in infos.values():
        per_queue.setdefault(info.queue, Counter())[info.state] += 1
    for queue, counts in per_queue.items():
        table.add_row(queue, *(str(counts[s]) for s in STATE_COLUMNS))
    finished = sum(1 for i in infos.values() if i.state.finished)
    bar = ProgressBar(total=total, completed=finished, width=50)
    return Group(table, Text(f"{finished}/{total} finished (DONE or DEAD)"), bar)


def run_demo(db: str | None = None, console: Console | None = None) -> int:
    """Run the scenario against a fresh SQLite file; returns the exit code for the CLI."""
    console = console or Console()
    path = Path(db) if db else Path(tempfile.mkdtemp(prefix="conveyor-demo-")) / "demo.db"
    url = f"sqlite:///{path.resolve()}"
    app.use(url)
    console.print(f"[bold]Conveyor demo[/] on [cyan]{escape(url)}[/] (no server needed)\n")
    scenario = Scenario()
    enqueue_initial(scenario)
    worker = app.worker(QUEUES, concurrency=3, prefetch=1, grace=5.0)
    errors: list[BaseException] = []
    thread = threading.Thread(target=_run_worker, args=(worker, errors), name="demo-worker")
    thread.start()
    try:
        finished, snapshot = _watch(scenario, console, thread)
    finally:
        worker.stop()
        thread.join(timeout=15.0)
    if errors:
        console.print(f"[red]the worker crashed:[/] {escape(repr(errors[0]))}")
        return 1
    _narrate(scenario, console, url)
    console.print(stats_view(snapshot))
    app.close()
    if not finished:
        console.print(f"[red]not every task finished within {TIMEOUT:.0f}s[/]")
        return 1
    return 0


def _run_worker(worker: Worker, errors: list[BaseException]) -> None:
    try:
        worker.run()
    except BaseException as exc:  # reported by the main thread, which owns the console
        errors.append(exc)


def _watch(scenario: Scenario, console: Console,
           thread: threading.Thread) -> tuple[bool, Stats]:
    """Refresh the live view until every task is DONE or DEAD; enqueue the urgent report once
    the backlog is moving, so it has to overtake work that is already waiting."""
    start = time.monotonic()
    with Live(console=console, refresh_per_second=10, transient=False) as live:
        while True:
            ids = scenario.ids
            infos = read(ids)
            if scenario.urgent is None and _reports_done(scenario, infos) >= 2:
                scenario.waiting_when_urgent = sum(
                    1 for h in scenario.backlog if infos[h.id].state == TaskState.PENDING)
                scenario.urgent = render_report.options(priority=9).enqueue(999)
            live.update(progress_view(infos, BACKLOG + len(scenario.others) + 1,
                                      time.monotonic() - start))
            done = scenario.urgent is not None and len(infos) == len(ids) and all(
                i.state.finished for i in infos.values())
            if done or not thread.is_alive() or time.monotonic() - start > TIMEOUT:
                return done, app.stats()
            time.sleep(0.1)


def _reports_done(scenario: Scenario, infos: dict[str, TaskInfo]) -> int:
    return sum(1 for h in scenario.backlog if infos[h.id].state == TaskState.DONE)


def _started_after(info: TaskInfo, moment: datetime) -> bool:
    return info.started_at is not None and info.started_at > moment


def _narrate(scenario: Scenario, console: Console, url: str) -> None:
    infos = read(scenario.ids)
    console.print("\n[bold]What happened[/]")
    if scenario.urgent is not None:
        urgent = infos[scenario.urgent.id]
        started = urgent.started_at
        overtaken = sum(1 for h in scenario.backlog
                        if started is None or _started_after(infos[h.id], started))
        console.print(
            f" • [bold]Priority[/]: a priority-9 report was enqueued behind "
            f"{scenario.waiting_when_urgent} waiting priority-3 reports and started before "
            f"{overtaken} of them.")
    if scenario.reminder is not None:
        reminder = infos[scenario.reminder.id]
        if reminder.started_at and reminder.scheduled_at:
            late = (reminder.started_at - reminder.scheduled_at).total_seconds()
            wait = " (the first slot that came free)" if late > 0.05 else ""
            console.print(
                f" • [bold]Delay[/]: the reminder was due {REMINDER_DELAY:.1f}s after enqueue, "
                f"waited without holding a lease, and started {late * 1000:.0f} ms after it "
                f"fell due{wait}.")
    if scenario.flaky is not None:
        flaky = infos[scenario.flaky.id]
        waits = " then ".join(f"{capture_payment.retry.delay(n):.1f}s"
                              for n in range(1, flaky.attempts))
        console.print(
            f" • [bold]Retries[/]: capture_payment failed {flaky.attempts - 1} time(s) "
            f"(ConnectionError), backed off {waits or 'not at all'}, and ended {flaky.state} "
            f"after {flaky.attempts} attempts.")
    if scenario.dead is not None:
        dead = infos[scenario.dead.id]
        console.print(
            f" • [bold]DLQ[/]: reconcile_ledger failed {dead.attempts} times and is "
            f"{dead.state} in the dead-letter queue ({escape(dead.dead_reason or '-')}): "
            f"{escape(last_line(dead.error))}")
        base = f"conveyor --url {escape(url)}"
        console.print(f"\nExplore: [cyan]{base} dead list[/]\n"
                      f"         [cyan]{base} inspect {dead.id}[/]\n"
                      f"         [cyan]{base} dead requeue --all[/]\n")
