"""Throughput of the synthetic population generator: rows per second for a million-row SEA frame.

Run: ``python bench/bench_synthetic.py [ROWS] [REPEATS]``. The first, untimed call loads the
parameter file and calibrates the per-country intercepts, which happens once per process.

Baseline, measured in the same run: bare numpy filling a DataFrame of the same shape (rows x the
generator's columns) with uniform draws, the least any generator of that frame must do. The ratio
says what the population's structure (country mixes, correlated risk factors, the outcome model)
costs over drawing random numbers.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.summary import emit, figure  # noqa: E402
from orchestrator.data.synthetic import available_countries, generate_sea_population  # noqa: E402


def timed(make: Callable[[int], pd.DataFrame], rows: int, repeats: int) -> list[float]:
    timings = []
    for seed in range(repeats):
        start = time.perf_counter()
        frame = make(seed)
        timings.append(time.perf_counter() - start)
        assert len(frame) == rows
    return timings


def main(rows: int = 1_000_000, repeats: int = 5) -> None:
    countries = dict.fromkeys(available_countries(), 1.0)
    columns = list(generate_sea_population(countries, 1_000, seed=0).columns)

    def bare(seed: int) -> pd.DataFrame:
        return pd.DataFrame(np.random.default_rng(seed).random((rows, len(columns))), columns=columns)

    timings = timed(lambda seed: generate_sea_population(countries, rows, seed=seed), rows, repeats)
    baseline = timed(bare, rows, repeats)
    print(f"synthetic sea-population: {rows:,} rows x {len(countries)} countries, {repeats} runs")
    for name, measured in (("generator", timings), (f"bare numpy, {len(columns)} columns", baseline)):
        best, median = min(measured), statistics.median(measured)
        print(f"  {name}")
        print(f"    best   {best:6.3f} s  {rows / best:12,.0f} rows/s")
        print(f"    median {median:6.3f} s  {rows / median:12,.0f} rows/s")
    emit(
        "synthetic",
        [
            figure(
                f"sea-population generator, {rows:,} rows",
                rows / statistics.median(timings),
                "rows/s",
                f"bare numpy uniform draws into a frame of the same {len(columns)} columns",
                rows / statistics.median(baseline),
                "higher",
            )
        ],
    )


if __name__ == "__main__":
    arguments = [int(argument) for argument in sys.argv[1:3]]
    main(*arguments)
