"""Alert thresholds (``app.alert(...)``), checked against ``app.stats()`` by ``conveyor health``
and turned into equivalent Prometheus alerting rules by ``conveyor alerts --prometheus``.

What each threshold compares, per queue (``queue=None``: every queue, each on its own):

==========================  =====================================================================
``max_depth``               PENDING tasks (ready, waiting for a worker) now
``min_utilization``         busy / total slots of the workers serving the queue, below it; only
                            with workers. With none serving a queue that has PENDING tasks, the
                            breach is ``no_workers`` instead (nothing can drain it)
``max_utilization``         the same ratio, above it
``max_dead_per_minute``     tasks that entered the DLQ per minute over the stats window
``max_p99_seconds``         p99 of due time -> success over the stats window
==========================  =====================================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

from conveyor.errors import ConfigurationError
from conveyor.model import Stats, TaskState

THRESHOLDS = ("max_depth", "min_utilization", "max_utilization", "max_dead_per_minute",
              "max_p99_seconds")


@dataclass(frozen=True, slots=True)
class AlertRule:
    queue: str | None = None
    """None: every queue."""
    max_depth: int | None = None
    min_utilization: float | None = None
    max_utilization: float | None = None
    max_dead_per_minute: float | None = None
    max_p99_seconds: float | None = None

    def __post_init__(self) -> None:
        set_ = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "queue"}
        if all(v is None for v in set_.values()):
            raise ConfigurationError("app.alert() needs at least one threshold")
        for name, value in set_.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value) or value < 0):
                raise ConfigurationError(
                    f"alert threshold {name} must be a finite number >= 0, got {value!r}")
        for name in ("min_utilization", "max_utilization"):
            value = set_[name]
            if value is not None and value > 1:
                raise ConfigurationError(f"{name} is a ratio between 0 and 1, got {value}")
        low, high = set_["min_utilization"], set_["max_utilization"]
        if low is not None and high is not None and low > high:
            raise ConfigurationError(
                f"min_utilization {low} is above max_utilization {high}: one of them would "
                f"always be breached")

    def thresholds(self) -> dict[str, float]:
        return {n: float(getattr(self, n)) for n in THRESHOLDS if getattr(self, n) is not None}


@dataclass(frozen=True, slots=True)
class Breach:
    queue: str
    rule: str
    """A threshold's name, or ``no_workers``."""
    observed: float
    threshold: float

    def __str__(self) -> str:
        if self.rule == "no_workers":
            return (f"queue {self.queue!r}: no_workers: {self.observed:g} PENDING task(s) and no "
                    f"worker serving the queue")
        limit = "<" if self.rule.startswith("min_") else ">"
        return (f"queue {self.queue!r}: {self.rule}: observed {self.observed:.4g} "
                f"{limit} threshold {self.threshold:g}")

    def to_json(self) -> dict[str, object]:
        return {"queue": self.queue, "rule": self.rule, "observed": self.observed,
                "threshold": self.threshold, "message": str(self)}


def evaluate(rules: list[AlertRule], stats: Stats) -> list[Breach]:
    """Every breach of every rule, in rule order, then by queue."""
    breaches: list[Breach] = []
    for rule in rules:
        names = [rule.queue] if rule.queue is not None else sorted(stats.queues)
        for name in names:
            breaches += _check(rule, name, stats)
    return breaches


def _check(rule: AlertRule, name: str, stats: Stats) -> list[Breach]:
    queue = stats.queues.get(name)
    found: list[Breach] = []
    if queue is None:
        return found
    pending = queue.count(TaskState.PENDING)
    if rule.max_depth is not None and pending > rule.max_depth:
        found.append(Breach(name, "max_depth", pending, rule.max_depth))
    utilization = queue.utilization
    if utilization is None:
        if rule.min_utilization is not None and pending > 0 and not queue.paused:
            found.append(Breach(name, "no_workers", pending, 0))
    else:
        if rule.min_utilization is not None and utilization < rule.min_utilization:
            found.append(Breach(name, "min_utilization", utilization, rule.min_utilization))
        if rule.max_utilization is not None and utilization > rule.max_utilization:
            found.append(Breach(name, "max_utilization", utilization, rule.max_utilization))
    if rule.max_dead_per_minute is not None and queue.dead_per_minute > rule.max_dead_per_minute:
        found.append(Breach(name, "max_dead_per_minute", queue.dead_per_minute,
                            rule.max_dead_per_minute))
    p99 = queue.latency.p99
    if rule.max_p99_seconds is not None and p99 is not None and p99 > rule.max_p99_seconds:
        found.append(Breach(name, "max_p99_seconds", p99, rule.max_p99_seconds))
    return found


# -- Prometheus alerting rules --------------------------------------------------------------------


def prometheus_rules(rules: list[AlertRule], window: str = "5m", for_: str = "2m") -> str:
    """An alerting-rules file (YAML) with one rule per threshold (plus ``no_workers`` beside each
    ``min_utilization``), in PromQL over the names ``conveyor metrics`` exports."""
    lines = ["groups:", "  - name: conveyor", "    rules:"]
    for number, rule in enumerate(rules, start=1):
        for alert, expr, summary in _rule_exprs(rule, window):
            lines += [
                f"      - alert: {alert}",
                f"        expr: {json.dumps(expr)}",
                f"        for: {for_}",
                "        labels:",
                "          severity: warning",
                f"          conveyor_rule: {json.dumps(str(number))}",
                "        annotations:",
                f"          summary: {json.dumps(summary)}",
            ]
    if len(lines) == 3:
        lines[-1] = "    rules: []"
    return "\n".join(lines) + "\n"


def _rule_exprs(rule: AlertRule, window: str) -> list[tuple[str, str, str]]:
    """(alert name, PromQL, summary) per threshold of ``rule``."""
    where = f"queue={json.dumps(rule.queue)}" if rule.queue is not None else ""
    sel = "{" + where + "}"
    with_state = "{" + ",".join(x for x in (where, 'state="PENDING"') if x) + "}"
    dead = "{" + ",".join(x for x in (where, 'status="dead"') if x) + "}"
    utilization = f"(conveyor_queue_busy_slots{sel} / conveyor_queue_slots{sel})"
    who = f"queue {rule.queue}" if rule.queue else "queue {{ $labels.queue }}"
    out = []
    if rule.max_depth is not None:
        out.append(("ConveyorQueueDepth", f"conveyor_queue_tasks{with_state} > {rule.max_depth}",
                    f"{who}: more than {rule.max_depth} PENDING tasks"))
    if rule.min_utilization is not None:
        out.append(("ConveyorUtilizationLow", f"{utilization} < {rule.min_utilization}",
                    f"{who}: worker utilization below {rule.min_utilization:.0%}"))
        out.append(("ConveyorNoWorkers",
                    f"(conveyor_queue_tasks{with_state} > 0) and on (queue) "
                    f"(conveyor_queue_slots{sel} == 0) and on (queue) "
                    f"(conveyor_queue_paused{sel} == 0)",
                    f"{who}: PENDING tasks and no worker serving the queue"))
    if rule.max_utilization is not None:
        out.append(("ConveyorUtilizationHigh", f"{utilization} > {rule.max_utilization}",
                    f"{who}: worker utilization above {rule.max_utilization:.0%}"))
    if rule.max_dead_per_minute is not None:
        out.append(("ConveyorDeadLetterGrowth",
                    f"rate(conveyor_tasks_finished_total{dead}[{window}]) * 60 > "
                    f"{rule.max_dead_per_minute}",
                    f"{who}: more than {rule.max_dead_per_minute} dead tasks per minute"))
    if rule.max_p99_seconds is not None:
        out.append(("ConveyorLatencyP99",
                    f"histogram_quantile(0.99, sum by (queue, le) "
                    f"(rate(conveyor_task_latency_seconds_bucket{sel}[{window}]))) > "
                    f"{rule.max_p99_seconds}",
                    f"{who}: p99 latency (due to done) above {rule.max_p99_seconds}s"))
    return out
