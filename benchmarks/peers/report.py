"""Turns the raw runs into medians, ratios and the markdown table of BENCHMARKS.md's shape.

Medians over repeats, with min-max for the rates. Ratios are taken against the reference peer of
the same backend (huey for Redis, pgqueuer for PostgreSQL) measured in the same run, because
absolute rates drift between runs on a shared 2-core machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from adapters import PEERS, REFERENCES

DASH = "\u2013"  # an en dash, as in BENCHMARKS.md
TIMES = "\u00d7"

Run = dict[str, Any]


def _ok(runs: Iterable[Run], peer: str, workload: str) -> list[Run]:
    return [r for r in runs if r["peer"] == peer and r["workload"] == workload
            and r.get("status") == "ok"]


def _failed(runs: Iterable[Run], peer: str, workload: str) -> list[Run]:
    return [r for r in runs if r["peer"] == peer and r["workload"] == workload
            and r.get("status") != "ok"]


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(runs: list[Run], peers: list[str]) -> dict[str, dict[str, Any]]:
    """Per peer: medians (and ranges) of every figure over its successful runs."""
    summary: dict[str, dict[str, Any]] = {}
    for peer in peers:
        s: dict[str, Any] = {}
        t_runs = _ok(runs, peer, "T")
        if t_runs:
            s["enqueue"] = _stats([r["enqueue_rate"] for r in t_runs])
            s["bulk"] = t_runs[0]["bulk"]
            s["drain"] = _stats([r["drain_rate"] for r in t_runs])
        c_runs = _ok(runs, peer, "C")
        if c_runs:
            s["e2e"] = _stats([r["e2e_rate"] for r in c_runs])
        l_runs = _ok(runs, peer, "L")
        if l_runs:
            s["latency_ms"] = {k: statistics.median(r["latency_ms"][k] for r in l_runs)
                               for k in ("p50", "p95", "p99", "max")}
        p_runs = _ok(runs, peer, "P")
        if p_runs and "skipped" in p_runs[0]:
            s["priority"] = {"skipped": p_runs[0]["skipped"]}
        elif p_runs:
            s["priority"] = {
                "p50": statistics.median(r["high_wait_ms"]["p50"] for r in p_runs),
                "max": statistics.median(r["high_wait_ms"]["max"] for r in p_runs),
                "lows_first": statistics.median(r["lows_before_first"] for r in p_runs),
                "lows_last": statistics.median(r["lows_before_last"] for r in p_runs)}
            if all("lows_overtaking" in r for r in p_runs):  # results before 2026-11-25 lack it
                s["priority"]["lows_overtaking"] = max(r["lows_overtaking"] for r in p_runs)
        d_runs = _ok(runs, peer, "D")
        if d_runs:
            s["lateness_ms"] = {k: statistics.median(r["lateness_ms"][k] for r in d_runs)
                                for k in ("p50", "p99", "max", "min")}
            s["early"] = sum(r["early"] for r in d_runs)
        for workload in "TCLPD":
            failed = _failed(runs, peer, workload)
            if failed:
                s.setdefault("failed", {})[workload] = sorted({r["status"] for r in failed})
        s["violations"] = [
            {"workload": r["workload"], **r["check"]} for r in runs
            if r["peer"] == peer and "check" in r
            and (r["check"]["duplicates"] or r["check"]["missing"] or r["check"]["unexpected"])]
        s["settings"] = next((r["settings"] for r in runs
                              if r["peer"] == peer and r.get("settings")), "")
        summary[peer] = s
    for s in summary.values():
        for reference in REFERENCES.values():
            ref = summary.get(reference, {})
            for key in ("drain", "e2e"):
                if key in s and key in ref:
                    s.setdefault("ratios", {})[f"{key}_vs_{reference}"] = (
                        s[key]["median"] / ref[key]["median"])
    return summary


def _rate(stats: dict[str, float] | None) -> str:
    if not stats:
        return ""
    return f"{stats['median']:,.0f} ({stats['min']:,.0f}{DASH}{stats['max']:,.0f})"


def _ms(value: float) -> str:
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def _cell(s: dict[str, Any], workload: str, text: str) -> str:
    failed = s.get("failed", {}).get(workload)
    if text:
        return text + (f" ({'/'.join(failed)} in some runs)" if failed else "")
    return "/".join(failed) if failed else DASH


def _row(peer: str, s: dict[str, Any], references: list[str]) -> dict[str, str]:
    """One table row as {column heading: cell}; columns of workloads not run are dropped."""
    info = PEERS[peer]
    row = {"system": f"{peer} ({info.label})", "backend": info.backend}
    enqueue = ""
    if "enqueue" in s:
        enqueue = f"{s['enqueue']['median']:,.0f}" + (" (bulk)" if s.get("bulk") else "")
    row["enqueue"] = _cell(s, "T", enqueue)
    row["T drain"] = _cell(s, "T", _rate(s.get("drain")))
    row["C end-to-end"] = _cell(s, "C", _rate(s.get("e2e")))
    for ref in references:
        ratios = s.get("ratios", {})
        pair = [ratios.get(f"drain_vs_{ref}"), ratios.get(f"e2e_vs_{ref}")]
        row[f"T / C vs {ref}"] = " / ".join(
            f"{value:.2f}{TIMES}" if value is not None else DASH for value in pair)
    lat = s.get("latency_ms")
    l_text = " / ".join(_ms(lat[k]) for k in ("p50", "p95", "p99", "max")) if lat else ""
    row["L p50 / p95 / p99 / max"] = _cell(s, "L", l_text)
    pri = s.get("priority")
    p_text = ""
    if pri and "skipped" in pri:
        p_text = pri["skipped"]
    elif pri:
        overtook = (f"; {pri['lows_overtaking']:,.0f}" if "lows_overtaking" in pri else "")
        p_text = (f"{_ms(pri['p50'])} / {_ms(pri['max'])} "
                  f"({pri['lows_first']:,.0f} / {pri['lows_last']:,.0f}{overtook})")
    row["P high wait p50 / max (lows)"] = _cell(s, "P", p_text)
    late = s.get("lateness_ms")
    d_text = ""
    if late:
        d_text = " / ".join(_ms(late[k]) for k in ("p50", "p99", "max"))
        d_text += f" ({s['early']} early, min {_ms(late['min'])})" if s["early"] else ""
    row["D lateness p50 / p99 / max"] = _cell(s, "D", d_text)
    return row


def _wanted(heading: str, workloads: str) -> bool:
    needs = {"enqueue": "T", "T drain": "T", "C end-to-end": "C", "L p50": "L",
             "P high": "P", "D late": "D"}
    for prefix, workload in needs.items():
        if heading.startswith(prefix):
            return workload in workloads
    if heading.startswith("T / C vs"):
        return "T" in workloads or "C" in workloads
    return True


def services(meta: dict[str, Any]) -> str:
    text = ""
    if "redis_version" in meta:
        text += f"Redis {meta['redis_version']} (private, no persistence); "
    if "postgres_version" in meta:
        text += f"PostgreSQL {meta['postgres_version']} (a fresh database per run); "
    return text


def markdown(summary: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    """The results table, the settings per peer, and any exactly-once violations."""
    references = [ref for ref in REFERENCES.values() if ref in summary]
    rows = [_row(peer, s, references) for peer, s in summary.items()]
    workloads = "".join(meta.get("workloads", "TCLPD"))
    headings = [h for h in (rows[0] if rows else {}) if _wanted(h, workloads)]
    lines = [
        f"# Peer benchmarks, {meta['date']}",
        "",
        f"{meta['machine']}; {services(meta)}N = {meta['n']:,}; {meta['repeats']} repeat(s), "
        f"medians (min{DASH}max). "
        "Rates in tasks/s, times in ms. \"lows\" = low-priority tasks started before the "
        "first / last high-priority one; after the \";\", the most that started after a "
        "high-priority one was enqueued and before it started (the largest of any round).",
        "",
        "| " + " | ".join(headings) + " |",
        "|---" * len(headings) + "|",
    ]
    lines += ["| " + " | ".join(row[h] for h in headings) + " |" for row in rows]
    lines += ["", "Settings (each peer's CLI; 2 worker processes on 2 cores):", ""]
    lines += [f"- **{peer}**: {s['settings']}" for peer, s in summary.items() if s["settings"]]
    violations = [(peer, v) for peer, s in summary.items() for v in s["violations"]]
    lines += [""]
    if violations:
        lines += ["Exactly-once violations:", ""]
        lines += [f"- {peer} {v['workload']}: {v['records']} records, {v['distinct']} distinct, "
                  f"{v['duplicates']} duplicates, {v['missing']} missing" for peer, v in violations]
    else:
        lines += ["Every completed run ran each task exactly once (no duplicates, none missing)."]
    for note in meta.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"
