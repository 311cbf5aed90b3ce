"""Alert thresholds: declared with app.alert, evaluated against a Stats snapshot."""

from __future__ import annotations

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor.metrics.alerts import AlertRule, evaluate
from conveyor.model import LatencySummary, QueueStats, Stats


def _stats(**queues: QueueStats) -> Stats:
    return Stats(queues=queues, workers=[])


def _queue(name: str, pending: int = 0, **fields: object) -> QueueStats:
    return QueueStats(queue=name, counts={"PENDING": pending}, **fields)  # type: ignore[arg-type]


def test_each_threshold_breaches_only_past_its_limit() -> None:
    rule = AlertRule("q", max_depth=10, min_utilization=0.2, max_utilization=0.9,
                     max_dead_per_minute=1.0, max_p99_seconds=2.0)
    calm = _queue("q", 10, busy_slots=5, total_slots=10, dead=5, window_seconds=300.0,
                  latency=LatencySummary(count=3, p50=1.0, p95=2.0, p99=2.0))
    assert evaluate([rule], _stats(q=calm)) == []
    hot = _queue("q", 11, busy_slots=10, total_slots=10, dead=6, window_seconds=300.0,
                 latency=LatencySummary(count=3, p50=1.0, p95=2.0, p99=2.5))
    assert [(b.rule, b.observed, b.threshold) for b in evaluate([rule], _stats(q=hot))] == [
        ("max_depth", 11, 10), ("max_utilization", 1.0, 0.9),
        ("max_dead_per_minute", pytest.approx(1.2), 1.0), ("max_p99_seconds", 2.5, 2.0)]
    idle = _queue("q", 0, busy_slots=1, total_slots=10)
    assert [b.rule for b in evaluate([rule], _stats(q=idle))] == ["min_utilization"]


def test_no_workers_is_a_breach_only_with_pending_work_on_a_running_queue() -> None:
    rule = AlertRule(None, min_utilization=0.2)
    stats = _stats(a=_queue("a", 3), b=_queue("b", 0), c=_queue("c", 3, paused=True))
    breaches = evaluate([rule], stats)
    assert [(b.queue, b.rule) for b in breaches] == [("a", "no_workers")]
    assert "no worker serving the queue" in str(breaches[0])


def test_a_rule_for_all_queues_checks_each_queue() -> None:
    rule = AlertRule(max_depth=1)
    stats = _stats(a=_queue("a", 2), b=_queue("b", 1), c=_queue("c", 5))
    assert [b.queue for b in evaluate([rule], stats)] == ["a", "c"]
    assert evaluate([AlertRule("missing", max_depth=0)], stats) == []


def test_app_alert_keeps_every_rule_and_refuses_nonsense() -> None:
    app = Conveyor("sqlite://:memory:")
    app.alert(queue="email", max_depth=1000, min_utilization=0.2, max_utilization=0.9,
              max_dead_per_minute=10, max_p99_seconds=5.0)
    app.alert(max_depth=5)
    assert [r.queue for r in app.alerts] == ["email", None]
    with pytest.raises(ConfigurationError):
        app.alert(queue="x")
    with pytest.raises(ConfigurationError):
        app.alert(min_utilization=20)
    with pytest.raises(ConfigurationError):
        app.alert(max_depth=-1)
    assert app.health() == []
