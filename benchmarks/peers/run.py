"""Run the BENCHMARKS.md workloads for the peers and for Conveyor, side by side, in one run.

    .venv/bin/python benchmarks/peers/run.py --peers huey,rq --workloads T,C,L,P,D \\
        --n 20000 --repeats 3 --out benchmarks/peers/results/2026-11-24.json

Runs with Conveyor's interpreter; each peer runs in a virtualenv of its own that this script
creates and installs (``benchmarks/peers/.venv/<peer>``). Every workload run gets a flushed
private Redis or a fresh PostgreSQL database, and a fresh directory for its record file.
Rounds are interleaved (round 1 of every peer, then round 2...) so that drift on a busy machine
spreads over all peers instead of penalising whichever ran last. Results are saved after every
run, so an interrupted run still leaves its data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters import PEERS, REPO, Peer
from report import markdown, summarize
from services import (
    HERE,
    PostgresServer,
    RedisServer,
    ServiceError,
    ensure_venv,
    kill_listed,
)

WORKLOADS = "TCLPD"
PROBE = """
import sys
from conveyor.backends import open_backend
from conveyor.errors import ConfigurationError
try:
    open_backend(sys.argv[1]).close()
except ConfigurationError as exc:
    sys.exit(f"unsupported: {exc}")
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_peers() -> list[str]:
    return list(PEERS)


def timeout_for(workload: str, n: int, base: float) -> float:
    """Generous per-run limits: a slow peer finishes, a hung one is cut off."""
    if workload in "TC":
        return base + n / 50  # 50 tasks/s is far below the slowest peer
    return base


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"



def compile_sources(python: Path) -> None:
    """Byte-compile the package an existing interpreter runs from source (Conveyor's editable
    install), as pip does for every peer it installs: where ``PYTHONDONTWRITEBYTECODE`` is set
    (this machine), each worker process would otherwise compile Conveyor's modules again at
    start-up, about 60 ms of CPU that no peer pays."""
    subprocess.run([str(python), "-m", "compileall", "-q", str(REPO / "src")], check=False,
                   capture_output=True, timeout=300)

class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.redis: RedisServer | None = None
        self.postgres: PostgresServer | None = None
        self.pythons: dict[str, Path] = {}
        self.unavailable: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []

    def start_services(self, peers: list[Peer]) -> None:
        backends = {peer.backend for peer in peers}
        if "redis" in backends:
            try:
                self.redis = RedisServer()
                log(f"private redis-server {self.redis.version} on {self.redis.url}")
            except ServiceError as exc:
                self._disable([p for p in peers if p.backend == "redis"], str(exc))
        if "postgres" in backends:
            try:
                self.postgres = PostgresServer()
                log(f"PostgreSQL {self.postgres.version} at 127.0.0.1:5432 (fresh databases)")
            except ServiceError as exc:
                self._disable([p for p in peers if p.backend == "postgres"], str(exc))

    def _disable(self, peers: list[Peer], reason: str) -> None:
        for peer in peers:
            self.unavailable.setdefault(peer.name, reason)
            log(f"skipping {peer.name}: {reason}")

    def prepare_peers(self, peers: list[Peer]) -> None:
        for peer in peers:
            if peer.name in self.unavailable:
                continue
            try:
                python = peer.python or ensure_venv(peer.name, peer.requirements, log=log)
            except ServiceError as exc:
                self._disable([peer], f"install failed: {exc}")
                continue
            if not Path(python).exists():
                self._disable([peer], f"interpreter {python} not found")
                continue
            if peer.probe_scheme and not self._probe(peer, python):
                continue
            if peer.python is not None:
                compile_sources(Path(python))
            self.pythons[peer.name] = Path(python)

    def _probe(self, peer: Peer, python: Path) -> bool:
        """Conveyor peers: is this backend there yet (they are being written)?"""
        workdir = Path(tempfile.mkdtemp(prefix="peerbench-probe-"))
        url, cleanup = self.url_for(peer, workdir)
        try:
            done = subprocess.run([str(python), "-c", PROBE, url], capture_output=True,
                                  text=True, timeout=60)
        except subprocess.TimeoutExpired:
            done = None
        finally:
            cleanup()
            shutil.rmtree(workdir, ignore_errors=True)
        if done is None or done.returncode != 0:
            reason = "backend probe timed out" if done is None else (
                done.stderr.strip().splitlines() or ["backend probe failed"])[-1]
            self._disable([peer], f"{peer.probe_scheme} backend not available: {reason}")
            return False
        return True

    def url_for(self, peer: Peer, workdir: Path) -> tuple[str, Any]:
        """A clean broker for one run, and how to clean up after it."""
        if peer.backend == "redis":
            assert self.redis is not None
            self.redis.flush()
            return self.redis.url, lambda: None
        if peer.backend == "postgres":
            assert self.postgres is not None
            url = self.postgres.create()
            postgres = self.postgres
            return url, lambda: postgres.drop(url)
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None

    def run_one(self, peer: Peer, workload: str, round_number: int) -> dict[str, Any]:
        label = f"{peer.name} {workload} {round_number}/{self.args.repeats}"
        workdir = Path(tempfile.mkdtemp(prefix=f"peerbench-{peer.name}-{workload}-"))
        timeout = timeout_for(workload, self.args.n, self.args.timeout)
        result: dict[str, Any] = {"peer": peer.name, "workload": workload,
                                  "round": round_number, "n": self.args.n}
        started = time.monotonic()
        try:
            url, cleanup = self.url_for(peer, workdir)
        except ServiceError as exc:
            return {**result, "status": "error", "error": str(exc)}
        command = [str(self.pythons[peer.name]), str(HERE / "agent.py"), "--peer", peer.name,
                   "--workload", workload, "--url", url, "--workdir", str(workdir),
                   "--n", str(self.args.n), "--timeout", str(timeout), "--label",
                   f"{peer.name} r{round_number}"]
        log(f"[{label}] starting")
        agent = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                 start_new_session=True, cwd=workdir)
        try:
            out, _ = agent.communicate(timeout=timeout + 60)
            lines = out.strip().splitlines()
            result.update(json.loads(lines[-1]) if lines else
                          {"status": "error", "error": f"agent exited {agent.returncode}"})
        except subprocess.TimeoutExpired:
            result.update(status="timeout", error=f"hard timeout after {timeout + 60:.0f}s")
        except json.JSONDecodeError as exc:
            result.update(status="error", error=f"unreadable agent output: {exc}")
        finally:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait(10)
            kill_listed(workdir / "workers.pids")
            try:
                cleanup()
            except ServiceError as exc:
                log(f"[{label}] cleanup failed: {exc}")
        result["round"] = round_number
        result["seconds"] = round(time.monotonic() - started, 1)
        if result.get("status") != "ok":
            worker_log = workdir / "workers.log"
            if worker_log.exists():
                result["worker_log_tail"] = worker_log.read_text(errors="replace")[-2000:]
        log(f"[{label}] {result.get('status')}: {brief(result)} ({result['seconds']}s)")
        if not self.args.keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
        return result

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def brief(result: dict[str, Any]) -> str:
    """One progress line per run."""
    if result.get("status") != "ok":
        return result.get("error", "")
    if "skipped" in result:
        return result["skipped"]
    parts = []
    if "enqueue_rate" in result and result["workload"] == "T":
        parts.append(f"enqueue {result['enqueue_rate']:,.0f}/s")
    if "drain_rate" in result:
        parts.append(f"drain {result['drain_rate']:,.0f}/s")
    if "e2e_rate" in result:
        parts.append(f"end-to-end {result['e2e_rate']:,.0f}/s")
    for key in ("latency_ms", "lateness_ms", "high_wait_ms"):
        if key in result:
            parts.append(key.replace("_ms", "") + " " + " / ".join(
                f"{k} {v:,.1f}" for k, v in result[key].items() if k != "min") + " ms")
    if "lows_before_first" in result:
        parts.append(f"lows before {result['lows_before_first']} / {result['lows_before_last']}"
                     f", overtaking {result.get('lows_overtaking', '?')}")
    if result.get("early"):
        parts.append(f"{result['early']} early")
    check = result.get("check", {})
    if check.get("duplicates") or check.get("missing") or check.get("unexpected"):
        parts.append(f"VIOLATION {check}")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", default=",".join(default_peers()),
                        help="comma-separated (default: all; see adapters/__init__.py)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--n", type=int, default=20_000, help="tasks for T and C")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds per run (T and C get n/50 more)")
    parser.add_argument("--out", type=Path,
                        default=HERE / "results" / f"{dt.date.today().isoformat()}.json")
    parser.add_argument("--note", action="append", default=[],
                        help="a line to print under the table (repeatable)")
    parser.add_argument("--keep-workdirs", action="store_true")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only re-render the markdown table of an earlier run's JSON")
    args = parser.parse_args()
    if args.report:
        data = json.loads(args.report.read_text())
        table = markdown(summarize(data["runs"], list(data["summary"])), data["meta"])
        args.report.with_suffix(".md").write_text(table)
        print(table)
        return 0
    names = [p.strip() for p in args.peers.split(",") if p.strip()]
    workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [p for p in names if p not in PEERS] + [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown peer(s) or workload(s): {', '.join(unknown)} "
                     f"(peers: {', '.join(PEERS)}; workloads: {', '.join(WORKLOADS)})")
    peers = [PEERS[name] for name in names]
    runner = Runner(args)
    meta: dict[str, Any] = {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                            "machine": machine(), "n": args.n, "repeats": args.repeats,
                            "workloads": workloads, "notes": args.note}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    interrupted = False
    try:
        runner.start_services(peers)
        runner.prepare_peers(peers)
        if runner.redis is not None:
            meta["redis_version"] = runner.redis.version
        if runner.postgres is not None:
            meta["postgres_version"] = runner.postgres.version
        ready = [peer for peer in peers if peer.name in runner.pythons]
        for round_number in range(1, args.repeats + 1):
            for workload in workloads:
                for peer in ready:
                    runner.runs.append(runner.run_one(peer, workload, round_number))
                    save(args.out, meta, runner, [p.name for p in ready])
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: writing what was measured so far")
    finally:
        runner.stop()
    table = save(args.out, meta, runner, [p.name for p in peers if p.name in runner.pythons])
    print(table)
    for name, reason in runner.unavailable.items():
        print(f"not run: {name}: {reason}")
    log(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 130 if interrupted else 0


def save(out: Path, meta: dict[str, Any], runner: Runner, peers: list[str]) -> str:
    summary = summarize(runner.runs, peers)
    notes = [f"Not run: {name}: {reason}" for name, reason in runner.unavailable.items()]
    table = markdown(summary, {**meta, "notes": meta["notes"] + notes})
    data = {"meta": meta, "unavailable": runner.unavailable, "summary": summary,
            "runs": runner.runs}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out)
    out.with_suffix(".md").write_text(table)
    return table


if __name__ == "__main__":
    sys.exit(main())
