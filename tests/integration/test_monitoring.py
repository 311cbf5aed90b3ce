"""The monitoring surface end to end on SQLite files: the Prometheus exposition (parsed with
prometheus-client's own parser) in-process, through the ASGI app and over HTTP from the
``conveyor metrics`` command; ``conveyor health`` exit codes; ``conveyor alerts --prometheus``;
``conveyor stats --json``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from conveyor import Conveyor
from conveyor.cli.main import cli
from conveyor.metrics import asgi_app
from conveyor.metrics.histogram import BOUNDS
from conveyor.metrics.prometheus import exposition

TESTS_DIR = Path(__file__).resolve().parent.parent
APP = "apps.monitored:app"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.fixture
def monitored(tmp_path: Path) -> Any:
    from apps.monitored import app

    original = app.url
    app.use(f"sqlite:///{tmp_path / 'monitored.db'}")
    yield app
    app.use(original)


def _run_mix(app: Conveyor) -> None:
    from apps.monitored import bounce, send

    for n in range(5):
        send.enqueue(n)
    for n in range(2):
        bounce.enqueue(n)
    app.run_until_idle(["mail"], concurrency=2, timeout=60)


def test_the_exposition_after_real_tasks(monitored: Conveyor) -> None:
    _run_mix(monitored)
    monitored.pause("mail")
    samples = _samples(exposition(monitored).decode())
    q = (("queue", "mail"),)
    finished = "conveyor_tasks_finished_total"
    assert samples[("conveyor_tasks_enqueued_total", q)] == 7
    assert samples[(finished, (("queue", "mail"), ("status", "succeeded")))] == 5
    assert samples[(finished, (("queue", "mail"), ("status", "dead")))] == 2
    assert samples[(finished, (("queue", "mail"), ("status", "failed")))] == 2
    assert samples[("conveyor_queue_tasks", (("queue", "mail"), ("state", "DONE")))] == 5
    assert samples[("conveyor_queue_tasks", (("queue", "mail"), ("state", "DEAD")))] == 2
    assert samples[("conveyor_queue_paused", q)] == 1
    assert samples[("conveyor_workers", ())] == 0
    assert samples[("conveyor_task_queue_wait_seconds_count", q)] == 7
    assert samples[("conveyor_task_latency_seconds_count", q)] == 5
    assert samples[("conveyor_tasks_started_total", q)] == 7
    assert samples[("conveyor_task_duration_seconds_count", q)] == 7
    assert 0 <= samples[("conveyor_task_duration_seconds_sum", q)] < 60
    inf = (("le", "+Inf"), ("queue", "mail"))
    assert samples[("conveyor_task_latency_seconds_bucket", inf)] == 5
    cumulative = [samples[("conveyor_task_latency_seconds_bucket",
                           (("le", repr(b)), ("queue", "mail")))] for b in BOUNDS]
    assert cumulative == sorted(cumulative) and cumulative[-1] == 5
    assert 0 <= samples[("conveyor_task_latency_seconds_sum", q)] < 60


def test_each_worker_has_its_utilization_and_heartbeat_age(monitored: Conveyor) -> None:
    from apps.monitored import send

    worker = monitored.worker(["mail"], concurrency=4)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert worker.started.wait(10)
        send.enqueue(1).result(timeout=30)
        samples = _samples(exposition(monitored).decode())
    finally:
        worker.stop()
        thread.join(30)
    (labels,) = [k[1] for k in samples if k[0] == "conveyor_worker_utilization"]
    assert dict(labels)["worker"] == worker.id
    assert 0.0 <= samples[("conveyor_worker_utilization", labels)] <= 1.0
    assert 0.0 <= samples[("conveyor_worker_heartbeat_age_seconds", labels)] < 30
    after = _samples(exposition(monitored).decode())
    assert not [k for k in after if k[0] == "conveyor_worker_utilization"], "it left on stop"


def test_the_asgi_app_serves_the_same_exposition(monitored: Conveyor) -> None:
    _run_mix(monitored)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asgi_app(monitored)({"type": "http", "method": "GET", "path": "/metrics"},
                                    receive, send))
    assert sent[0]["status"] == 200
    samples = _samples(sent[1]["body"].decode())
    assert samples[("conveyor_tasks_enqueued_total", (("queue", "mail"),))] == 7


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(TESTS_DIR), **extra}
    env.pop("CONVEYOR_APP", None)
    return env


def test_conveyor_metrics_serves_over_http(monitored: Conveyor) -> None:
    _run_mix(monitored)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "metrics", APP, "--port", "0"],
        env=_env(monitored.url), stderr=subprocess.PIPE, text=True, cwd=TESTS_DIR,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving Prometheus metrics at http://127.0.0.1:" in line, line
        url = line.split(" at ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            body = response.read().decode()
        assert _samples(body)[("conveyor_tasks_enqueued_total", (("queue", "mail"),))] == 7
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=10)
        assert missing.value.code == 404
        missing.value.close()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stderr is not None:
            proc.stderr.close()


def _health(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor", "health", APP, *args],
                          env=_env(url, **env), capture_output=True, text=True, cwd=TESTS_DIR,
                          timeout=60)


def test_health_exits_0_when_healthy_and_1_naming_each_breach(monitored: Conveyor) -> None:
    url = monitored.url
    healthy = _health(url)
    assert healthy.returncode == 0, healthy.stderr
    assert "no threshold breached" in healthy.stdout
    from apps.monitored import send

    for n in range(4):
        send.enqueue(n)  # PENDING, and no worker serves "mail"
    breached = _health(url, CONVEYOR_MAX_DEPTH="3")
    assert breached.returncode == 1, breached.stderr
    assert "queue 'mail': max_depth: observed 4 > threshold 3" in breached.stdout
    assert "queue 'mail': no_workers" in breached.stdout
    as_json = json.loads(_health(url, "--json", CONVEYOR_MAX_DEPTH="3").stdout)
    assert not as_json["healthy"]
    assert {(b["queue"], b["rule"]) for b in as_json["breaches"]} == {
        ("mail", "max_depth"), ("mail", "no_workers")}


def test_health_exits_3_when_the_backend_is_unreachable(tmp_path: Path) -> None:
    unreachable = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    result = _health(unreachable)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "error:" in result.stderr


def test_alerts_prometheus_writes_one_rule_per_threshold(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    result = CliRunner().invoke(cli, ["alerts", APP, "--prometheus", "-o", str(out)],
                                env={"CONVEYOR_URL": f"sqlite:///{tmp_path / 'a.db'}"})
    assert result.exit_code == 0, result.output
    rules = yaml.safe_load(out.read_text())["groups"][0]["rules"]
    by_alert: dict[str, list[str]] = {}
    for rule in rules:
        by_alert.setdefault(rule["alert"], []).append(rule["expr"])
        assert rule["for"] == "2m" and rule["annotations"]["summary"]
    assert by_alert == {
        "ConveyorQueueDepth": ['conveyor_queue_tasks{queue="mail",state="PENDING"} > 1000'],
        "ConveyorLatencyP99": [
            'histogram_quantile(0.99, sum by (queue, le) '
            '(rate(conveyor_task_latency_seconds_bucket{queue="mail"}[5m]))) > 5.0'],
        "ConveyorDeadLetterGrowth": [
            'rate(conveyor_tasks_finished_total{status="dead"}[5m]) * 60 > 10'],
        "ConveyorUtilizationLow": ["(conveyor_queue_busy_slots{} / conveyor_queue_slots{}) < 0.2"],
        "ConveyorNoWorkers": [
            '(conveyor_queue_tasks{state="PENDING"} > 0) and on (queue) '
            '(conveyor_queue_slots{} == 0) and on (queue) (conveyor_queue_paused{} == 0)'],
        "ConveyorUtilizationHigh": [
            "(conveyor_queue_busy_slots{} / conveyor_queue_slots{}) > 0.9"],
    }


def test_stats_json_has_the_documented_shape(monitored: Conveyor) -> None:
    _run_mix(monitored)
    result = CliRunner().invoke(cli, ["--app", APP, "stats", "--json"],
                                env={"CONVEYOR_URL": None, "CONVEYOR_APP": None})
    assert result.exit_code == 0, result.output
    mail = json.loads(result.stdout)["queues"]["mail"]
    assert mail["totals"] == {"enqueued": 7, "succeeded": 5, "failed": 2, "retried": 0,
                              "dead": 2, "cancelled": 0, "expired": 0}
    assert mail["latency"]["count"] == 5 and mail["latency"]["p99"] is not None
    assert mail["paused"] is False and mail["utilization"] is None
    assert set(mail["rates"]) == {"enqueued", "succeeded", "failed", "dead"}
    assert mail["series"] and "at" in mail["series"][-1]
    table = CliRunner().invoke(cli, ["--app", APP, "stats"],
                               env={"CONVEYOR_URL": None, "CONVEYOR_APP": None})
    assert "LATENCY p50/p95/p99" in table.stdout and "no workers" in table.stdout
