"""The ``conveyor`` command line against real SQLite files: in-process through click's runner,
and as a real subprocess where exit codes, stderr and ``python -m conveyor`` matter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conveyor import Conveyor, Retry, TaskInfo, TaskState
from conveyor.cli.main import cli

TESTS_DIR = Path(__file__).resolve().parent.parent
APP = "apps.basic:app"
CLEAN_ENV: dict[str, str | None] = {"CONVEYOR_URL": None, "CONVEYOR_APP": None}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def app(url: str) -> Iterator[Conveyor]:
    """The very app object the CLI loads (same module), pointed at this test's database and
    pointed back afterwards, since other test modules share it."""
    from apps.basic import app as basic_app

    original = basic_app.url
    basic_app.use(url)
    yield basic_app
    basic_app.use(original)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=CLEAN_ENV)


def run_ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def subprocess_env(url: str) -> dict[str, str]:
    return {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(TESTS_DIR)}


# -- enqueue -------------------------------------------------------------------------------------


def test_enqueue_prints_the_id_of_a_stored_task(app: Conveyor, url: str) -> None:
    result = run_ok("--app", APP, "--url", url, "enqueue", "apps.basic.add", "--args", "[1, 2]",
                    "--queue", "other", "--priority", "7")
    task_id = result.stdout.strip()
    info = app.get(task_id)
    assert info is not None
    assert (info.args, info.queue, info.priority, info.state) == ((1, 2), "other", 7, "PENDING")


def test_enqueue_json_reports_an_idempotent_duplicate(app: Conveyor, url: str) -> None:
    args = ("--app", APP, "--url", url, "enqueue", "apps.basic.add", "--kwargs",
            '{"a": 1, "b": 2}', "--idempotency-key", "k-1", "--json")
    first = json.loads(run_ok(*args).stdout)
    second = json.loads(run_ok(*args).stdout)
    assert first["created"] is True
    assert second == {**first, "created": False}


def test_enqueue_accepts_app_after_the_command(app: Conveyor, url: str) -> None:
    result = run_ok("enqueue", "apps.basic.add", "--app", APP, "--url", url, "--args", "[1, 1]")
    assert app.get(result.stdout.strip()) is not None


def test_enqueue_with_delay_is_scheduled(app: Conveyor, url: str) -> None:
    result = run_ok("--app", APP, "--url", url, "enqueue", "apps.basic.add", "--args", "[1, 2]",
                    "--delay", "60")
    info = app.get(result.stdout.strip())
    assert info is not None and info.state == TaskState.SCHEDULED


def test_enqueue_then_worker_burst_runs_it(app: Conveyor, url: str) -> None:
    task_id = run_ok("--app", APP, "--url", url, "enqueue", "apps.basic.add",
                     "--args", "[20, 22]").stdout.strip()
    run_ok("--url", url, "worker", APP, "--burst", "--concurrency", "2")
    assert app.handle(task_id).result(timeout=5) == 42


# -- inspect and stats ---------------------------------------------------------------------------


def test_inspect_shows_every_field_and_the_traceback(app: Conveyor, url: str) -> None:
    handle = app.tasks["apps.basic.fail_always"].enqueue("boom from the test")
    app.run_until_idle(timeout=10)
    text = run_ok("--url", url, "inspect", handle.id).stdout
    for field in TaskInfo.__struct_fields__:
        assert field in text
    assert "DEAD" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: boom from the test" in text

    data = json.loads(run_ok("--url", url, "inspect", handle.id, "--json").stdout)
    assert set(TaskInfo.__struct_fields__) <= set(data)
    assert (data["state"], data["args"], data["attempts"]) == ("DEAD", ["boom from the test"], 1)


def test_stats_counts_states_per_queue_and_lists_workers(app: Conveyor, url: str) -> None:
    add = app.tasks["apps.basic.add"]
    add.enqueue(1, 2)
    add.options(queue="mail").enqueue(1, 2)
    add.options(delay=60).enqueue(1, 2)
    worker = app.worker(["idle-queue"], concurrency=3)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert worker.started.wait(10)
        data = json.loads(run_ok("--url", url, "stats", "--json").stdout)
        table = run_ok("--url", url, "stats").stdout
        listed = json.loads(run_ok("--url", url, "workers", "--json").stdout)
        workers_table = run_ok("--url", url, "workers").stdout
    finally:
        worker.stop()
        thread.join(10)
    assert data["queues"]["default"]["counts"]["PENDING"] == 1
    assert data["queues"]["default"]["counts"]["SCHEDULED"] == 1
    assert data["queues"]["mail"]["counts"]["PENDING"] == 1
    assert data["queues"]["default"]["oldest_pending_age"] >= 0
    assert data["totals"]["PENDING"] == 2
    assert [(w["id"], w["concurrency"]) for w in data["workers"]] == [(worker.id, 3)]
    assert data["total_slots"] == 3
    assert [(w["id"], w["queues"], w["utilization"]) for w in listed] == [
        (worker.id, ["idle-queue"], 0.0)]
    assert worker.id in workers_table
    for word in ("SCHEDULED", "PENDING", "CANCELLED", "OLDEST PENDING", "default", "mail",
                 worker.id, "0/3", "Overall utilization"):
        assert word in table


# -- dead ----------------------------------------------------------------------------------------


def _make_dead(app: Conveyor, *messages: str) -> list[str]:
    fail = app.tasks["apps.basic.fail_always"]
    ids = [fail.enqueue(m).id for m in messages]
    app.run_until_idle(timeout=10)
    return ids


def test_dead_list_shows_the_last_error_line(app: Conveyor, url: str) -> None:
    ids = _make_dead(app, "first failure", "second failure")
    table = run_ok("--url", url, "dead", "list").stdout
    assert "RuntimeError: first failure" in table and ids[1] in table
    listed = json.loads(run_ok("--url", url, "dead", "list", "--json").stdout)
    assert sorted(t["id"] for t in listed) == sorted(ids)
    other = run_ok("--url", url, "dead", "list", "--queue", "other", "--json").stdout
    assert json.loads(other) == []
    limited = run_ok("--url", url, "dead", "list", "--limit", "1", "--json").stdout
    assert len(json.loads(limited)) == 1


def test_dead_requeue_by_id_and_all(app: Conveyor, url: str) -> None:
    ids = _make_dead(app, "a", "b", "c")
    assert "requeued 1 task(s)" in run_ok("--url", url, "dead", "requeue", ids[0]).stdout
    assert app.get(ids[0]).state == TaskState.PENDING  # type: ignore[union-attr]

    again = run("--url", url, "dead", "requeue", ids[0], ids[1])
    assert again.exit_code == 1
    assert "not in the dead-letter queue" in again.stderr
    assert app.get(ids[1]).state == TaskState.PENDING  # type: ignore[union-attr]

    data = json.loads(run_ok("--url", url, "dead", "requeue", "--all", "--json").stdout)
    assert data == {"requeued": [ids[2]]}
    assert app.dead() == []


def test_dead_purge_needs_yes(app: Conveyor, url: str) -> None:
    _make_dead(app, "x", "y")
    refused = run("--url", url, "dead", "purge")
    assert refused.exit_code == 2
    assert len(app.dead()) == 2
    assert "purged 0" in run_ok("--url", url, "dead", "purge", "--queue", "other", "--yes").stdout
    assert "purged 2" in run_ok("--url", url, "dead", "purge", "--yes").stdout
    assert app.dead() == []


def test_delete_by_id_needs_yes_and_reports_what_it_kept(app: Conveyor, url: str) -> None:
    ids = _make_dead(app, "a", "b")
    refused = run("--url", url, "delete", ids[0])
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert len(app.dead()) == 2
    assert "deleted 1 task(s)" in run_ok("--url", url, "delete", "--yes", ids[0]).stdout
    assert app.get(ids[0]) is None
    partly = run("--url", url, "delete", "--yes", "--json", ids[1], "no-such-id")
    assert partly.exit_code == 1
    assert json.loads(partly.stdout) == {"deleted": [ids[1]]}
    assert "no-such-id not deleted: no such task" in partly.stderr
    assert run("--url", url, "delete").exit_code == 2  # no id


def test_app_and_url_work_after_every_command_name(app: Conveyor, url: str) -> None:
    """Where users type them, ``conveyor stats --url ...``, as well as before the command."""
    dead_id = _make_dead(app, "boom")[0]
    stats = json.loads(run_ok("stats", "--url", url, "--json").stdout)
    assert stats["queues"]["default"]["counts"]["DEAD"] == 1
    assert dead_id in run_ok("inspect", dead_id, "--url", url).stdout
    assert dead_id in run_ok("inspect", dead_id, "--app", APP).stdout
    assert dead_id in run_ok("dead", "list", "--url", url).stdout
    assert dead_id in run_ok("dead", "--url", url, "list").stdout
    assert "default" in run_ok("queue", "list", "--url", url).stdout
    run_ok("workers", "--url", url)
    run_ok("health", APP, "--url", url)
    run_ok("cron", APP, "--url", url)
    assert run("stats").exit_code == 2, "and without either, a usage error as before"


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--app", APP, "enqueue", "apps.basic.add", "--args", "[1,"], 2, "not valid JSON"),
        (["--app", APP, "enqueue", "apps.basic.add", "--args", '{"a": 1}'], 2, "JSON array"),
        (["--app", APP, "enqueue", "apps.basic.add", "--kwargs", "[1]"], 2, "JSON object"),
        (["--app", APP, "enqueue", "no.such.task"], 2, "no task named 'no.such.task'"),
        (["--app", APP, "enqueue", "apps.basic.add", "--priority", "12"], 2, "priority"),
        (["--app", APP, "enqueue", "apps.basic.add", "--delay", "-1"], 2, "delay"),
        (["--app", "apps.missing:app", "enqueue", "x"], 2, "cannot import module"),
        (["--app", "apps.basic:nothing", "enqueue", "x"], 2, "has no attribute"),
        (["--app", "apps.basic:touch", "enqueue", "x"], 2, "not a Conveyor app"),
        (["--app", "apps.basic:", "enqueue", "x"], 2, "MODULE:APP"),
        (["enqueue", "x"], 2, "needs the app"),
        (["stats"], 2, "no backend given"),
        (["worker"], 2, "needs the app"),
        (["inspect", "no-such-id"], 1, "no task with id"),
    ],
)
def test_user_mistakes_print_one_line(
    app: Conveyor, url: str, args: list[str], code: int, message: str
) -> None:
    result = run(*([] if args == ["stats"] else ["--url", url]), *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("make_url", "code", "message"),
    [
        (lambda tmp: "redis://localhost:1/0", 3, "unreachable"),
        (lambda tmp: "nonsense", 2, "unsupported backend URL"),
        (lambda tmp: f"sqlite:///{tmp / 'missing-dir' / 'x.db'}", 3, "cannot open"),
    ],
)
def test_bad_urls(tmp_path: Path, make_url: object, code: int, message: str) -> None:
    result = run("--url", make_url(tmp_path), "stats")  # type: ignore[operator]
    assert result.exit_code == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_database_fails_without_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an sqlite database, just some bytes " * 100)
    result = run("--url", f"sqlite:///{junk}", "stats")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "not a database" in result.stderr
    assert "Traceback" not in result.stderr


# -- real processes ------------------------------------------------------------------------------


def conveyor(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor", *args], env=subprocess_env(url),
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_subprocess_enqueue_then_worker_burst(tmp_path: Path, url: str) -> None:
    enqueued = conveyor(url, tmp_path, "--app", APP, "enqueue", "apps.basic.add",
                        "--args", "[2, 3]", "--json")
    assert enqueued.returncode == 0, enqueued.stderr
    task_id = json.loads(enqueued.stdout)["id"]
    worked = conveyor(url, tmp_path, "worker", APP, "-q", "default", "--burst")
    assert worked.returncode == 0, worked.stderr
    assert "stopped (1 processed)" in worked.stderr
    info = json.loads(conveyor(url, tmp_path, "inspect", task_id, "--json").stdout)
    assert (info["state"], info["result"]) == ("DONE", 5)


def test_subprocess_errors_have_exit_codes_and_no_traceback(tmp_path: Path, url: str) -> None:
    bad_import = conveyor(url, tmp_path, "worker", "apps.missing:app", "--burst")
    assert bad_import.returncode == 2
    lines = bad_import.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot import module")
    unreachable = conveyor(f"sqlite:///{tmp_path / 'no' / 'x.db'}", tmp_path, "stats")
    assert unreachable.returncode == 3 and "Traceback" not in unreachable.stderr


def test_app_module_is_found_from_the_working_directory(tmp_path: Path, url: str) -> None:
    """Like uvicorn and celery: a module next to where the command runs needs no PYTHONPATH."""
    (tmp_path / "localtasks.py").write_text(
        "from conveyor import Conveyor\n"
        "app = Conveyor()\n"
        "@app.task(name='hello')\n"
        "def hello(who: str) -> str:\n"
        "    return 'hello ' + who\n"
    )
    env = {**os.environ, "CONVEYOR_URL": url}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "--app", "localtasks:app", "enqueue", "hello",
         "--args", '["you"]'], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reader = Conveyor(url)
    info = reader.get(done.stdout.strip())
    reader.close()
    assert info is not None and info.name == "hello"


def test_stats_watch_streams_until_ctrl_c(tmp_path: Path, url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "stats", "--watch", "--json", "--interval", "0.1"],
        env=subprocess_env(url), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert first["workers"] == [] and second["total_slots"] == 0
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_inspect_lists_the_error_of_every_attempt(app: Conveyor, url: str) -> None:
    @app.task(max_retries=2, retry=Retry.fixed(0.0))
    def fails_thrice(message: str) -> None:
        raise RuntimeError(message)

    handle = fails_thrice.enqueue("boom again")
    app.run_until_idle(timeout=10)
    text = run_ok("--url", url, "inspect", handle.id).stdout
    assert "3 kept (below)" in text
    history = text.split("errors by attempt", 1)[1].split("error (last attempt)", 1)[0]
    assert [line.split()[0] for line in history.splitlines() if "RuntimeError" in line] == [
        "#1", "#2", "#3"]
