"""Throughput of the synthetic population generator: rows per second for a million-row SEA frame.

Run: ``python bench/bench_synthetic.py [ROWS] [REPEATS]``. The first, untimed call loads the
parameter file and calibrates the per-country intercepts, which happens once per process.
"""

from __future__ import annotations

import statistics
import sys
import time

from orchestrator.data.synthetic import available_countries, generate_sea_population


def main(rows: int = 1_000_000, repeats: int = 5) -> None:
    countries = dict.fromkeys(available_countries(), 1.0)
    generate_sea_population(countries, 1_000, seed=0)
    timings = []
    for seed in range(repeats):
        start = time.perf_counter()
        frame = generate_sea_population(countries, rows, seed=seed)
        timings.append(time.perf_counter() - start)
        assert len(frame) == rows
    best, median = min(timings), statistics.median(timings)
    print(f"synthetic sea-population: {rows:,} rows x {len(countries)} countries, {repeats} runs")
    print(f"  best   {best:6.3f} s  {rows / best:12,.0f} rows/s")
    print(f"  median {median:6.3f} s  {rows / median:12,.0f} rows/s")


if __name__ == "__main__":
    arguments = [int(argument) for argument in sys.argv[1:3]]
    main(*arguments)
