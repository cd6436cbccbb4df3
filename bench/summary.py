"""The machine-readable summary line every benchmark prints last, for ``make bench``'s table.

Convention: a benchmark's last line on stdout is ``BENCH `` followed by one JSON object::

    BENCH {"bench": "gateway", "figures": [{"figure": "throughput through the platform",
           "value": 812.4, "unit": "req/s", "baseline": "straight to the model server",
           "baseline_value": 950.1, "ratio": 0.855, "better": "higher", "target": ">= 0.8"}]}

Each figure is measured against a baseline measured in the same run (so the ratio means the
same on a slow machine and a fast one); ``better`` says which direction of the ratio is good.
``bench/table.py`` runs every ``bench/bench_*.py``, reads these lines and writes
docs/benchmarks.md. Any benchmark, from any branch, joins the table by printing the line.

A benchmark that cannot run on this machine (no cluster configured, say) prints, with
:func:`not_run`, ``BENCH {"bench": ..., "figures": [], "not_run": "<the reason>"}`` and exits 0:
the table lists it as not run, with the reason, and ``make bench`` goes on with the others.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "BENCH "


def figure(
    name: str,
    value: float,
    unit: str,
    baseline: str,
    baseline_value: float,
    better: str = "lower",
    target: str | None = None,
) -> dict[str, Any]:
    """One figure: ``value`` against ``baseline_value`` measured the same way in the same run."""
    return {
        "figure": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 4),
        "ratio": round(value / baseline_value, 4) if baseline_value else None,
        "better": better,
        "target": target,
    }


def emit(bench: str, figures: list[dict[str, Any]]) -> None:
    """Print the summary line; call it last."""
    print(PREFIX + json.dumps({"bench": bench, "figures": figures}, sort_keys=True), flush=True)


def not_run(bench: str, reason: str) -> None:
    """Print the summary line of a benchmark that cannot run here, saying why; call it last."""
    if not reason.strip():
        raise ValueError("not_run needs the reason the benchmark cannot run here")
    line = {"bench": bench, "figures": [], "not_run": reason.strip()}
    print(PREFIX + json.dumps(line, sort_keys=True), flush=True)
