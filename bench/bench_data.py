"""Throughput of the data step on a million rows: generation, the data contract, the make-up.

Run: ``python bench/bench_data.py [ROWS] [REPEATS]``. Prints rows per second (best and median of
``REPEATS`` runs) for the SEA generator, the clinical-tabular contract (Great Expectations) and
the make-up comparison, plus the one-off cost of importing Great Expectations.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.data.contracts import validate  # noqa: E402
from orchestrator.data.representativeness import compare_makeup, default_target  # noqa: E402
from orchestrator.data.synthetic import available_countries, generate_sea_population  # noqa: E402

SENSITIVE = ["sex", "age_band", "ethnicity", "country"]


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return timings


def report(name: str, rows: int, timings: list[float]) -> None:
    best, median = min(timings), statistics.median(timings)
    print(f"{name:<28} best {best:7.3f} s {rows / best:13,.0f} rows/s   median {rows / median:13,.0f} rows/s")


def main(rows: int = 1_000_000, repeats: int = 3) -> None:
    countries = dict.fromkeys(available_countries(), 1.0)
    generate_sea_population(countries, 1_000, seed=0)  # loads parameters, calibrates intercepts

    start = time.perf_counter()
    import great_expectations  # noqa: F401

    print(f"great_expectations import     {time.perf_counter() - start:7.3f} s (once per process)")
    print(f"{rows:,} rows x {len(countries)} countries, {repeats} runs each")

    seeds = iter(range(repeats))
    report(
        "generate (sea-population)",
        rows,
        timed(lambda: generate_sea_population(countries, rows, next(seeds)), repeats),
    )

    frame = generate_sea_population(countries, rows, seed=99)
    results = []
    report(
        "contract (clinical-tabular)",
        rows,
        timed(lambda: results.append(validate(frame, "clinical-tabular", SENSITIVE, "diabetes")), repeats),
    )
    print(f"  {results[-1].evaluated} expectations, success={results[-1].success}")

    target = default_target(countries)
    report("make-up comparison", rows, timed(lambda: compare_makeup(frame, target), repeats))


if __name__ == "__main__":
    arguments = [int(argument) for argument in sys.argv[1:3]]
    main(*arguments)
