"""Run every benchmark and write one markdown table of their figures (``make bench``).

Each ``bench/bench_*.py`` runs in its own process, one after the other (never two at once: they
measure the machine). A benchmark's last ``BENCH {json}`` line (bench/summary.py) gives its
figures; one that cannot run on this machine says so with the reason (``summary.not_run``) and
is listed as not run; one that prints no line, or fails, is listed under the table with what
went wrong, never dropped silently; ``make bench`` goes on with the others either way. The
page starts with the machine the figures were measured on.

    python bench/table.py [--out docs/benchmarks.md] [--only gateway,provision] [--timeout 1800]
                          [--args "data=50000 2" --args "monitors=--rows 100000"]

``--args NAME=ARGUMENTS`` passes a benchmark its own arguments (smaller sizes for a quick look);
without it each runs at its defaults, the sizes the published figures are measured at.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import PREFIX  # noqa: E402


def summary_of(output: str) -> dict[str, Any] | None:
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    return json.loads(lines[-1][len(PREFIX) :]) if lines else None


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    try:
        docker = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        docker = ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores{memory}",
        f"- OS: {platform.system()} {platform.release()}; Python {platform.python_version()}"
        + (f"; Docker engine {docker}" if docker else ""),
        f"- Load average when the run started: {load} (other work on the machine inflates wall times)",
    ]


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def render(
    results: list[tuple[str, dict[str, Any] | None, str, float]], started: str, skipped: list[str]
) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/table.py) on {started}. Each figure is a ratio against a baseline",
        "measured in the same run, on this machine:",
        "",
        *machine(),
        "",
        *([f"Not run this time (`--only`): {', '.join(skipped)}.", ""] if skipped else []),
        "| bench | figure | value | baseline | baseline value | ratio | better | target |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    missing, unavailable = [], []
    for name, summary, problem, seconds in results:
        if summary is None:
            missing.append(f"- `{name}` ({seconds:.0f} s): {problem}")
            continue
        if summary.get("not_run"):
            unavailable.append(f"- `{name}`: {summary['not_run']}")
            continue
        for f in summary["figures"]:
            lines.append(
                f"| {summary['bench']} | {f['figure']} | {_num(f['value'])} {f['unit']} | {f['baseline']} | "
                f"{_num(f['baseline_value'])} {f['unit']} | {_num(f['ratio'])} | {f['better']} | "
                f"{f.get('target') or '—'} |"
            )
    if unavailable:
        lines += ["", "Not run here (they cannot run on this machine):", "", *unavailable]
    if missing:
        lines += ["", "Benchmarks without figures in this run:", "", *missing]
    lines += [
        "",
        "A benchmark joins this table by printing, as its last line, `BENCH {json}` (see bench/summary.py).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--only", default="", help="comma-separated bench names (bench_NAME.py)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per benchmark")
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGUMENTS",
        help="arguments for one benchmark, e.g. 'monitors=--rows 100000' (repeatable)",
    )
    args = parser.parse_args(argv)
    extra: dict[str, list[str]] = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep or not name.strip():
            parser.error(f"--args {item!r}: expected NAME=ARGUMENTS, e.g. 'monitors=--rows 100000'")
        extra[name.strip()] = shlex.split(rest)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    every = sorted((ROOT / "bench").glob("bench_*.py"))
    benches = [p for p in every if not only or p.stem[6:] in only]
    skipped = [p.stem[6:] for p in every if p not in benches]
    unknown = sorted((only | set(extra)) - {p.stem[6:] for p in every})
    if unknown:
        parser.error(f"no bench/bench_NAME.py for: {', '.join(unknown)}")
    results = []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for path in benches:
        print(f"== {path.name}", flush=True)
        begun = time.monotonic()
        try:
            run = subprocess.run(
                [sys.executable, str(path), *extra.get(path.stem[6:], [])],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            output = run.stdout
            problem = f"exited {run.returncode}: {run.stderr[-300:].strip()!r}" if run.returncode else ""
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            problem = f"timed out after {args.timeout:.0f} s"
        print(output, end="", flush=True)
        seconds = time.monotonic() - begun
        summary = None if problem else summary_of(output)
        if summary is None and not problem:
            problem = "printed no `BENCH {json}` line"
        results.append((path.stem[6:], summary, problem, seconds))
    text = render(results, started, skipped)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
