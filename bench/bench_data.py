"""Throughput of the data step on a million rows: generation, the data contract, the make-up.

Run: ``python bench/bench_data.py [ROWS] [REPEATS]``. Prints rows per second (best and median of
``REPEATS`` runs) for the SEA generator, the clinical-tabular contract (Great Expectations) and
the make-up comparison, plus the one-off cost of importing Great Expectations.

Baselines, measured in the same run on the same frame: the contract's planned checks (the same
list GX is given) evaluated with plain pandas, and the make-up's group counts as bare
``value_counts`` calls. The ratios say what GX and the comparison's records cost over the bare
library work they stand on.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.summary import emit, figure  # noqa: E402
from orchestrator.data.contract_plan import Check, plan_checks  # noqa: E402
from orchestrator.data.contract_suites import load_contract  # noqa: E402
from orchestrator.data.contracts import validate  # noqa: E402
from orchestrator.data.representativeness import compare_makeup, default_target  # noqa: E402
from orchestrator.data.synthetic import available_countries, generate_sea_population  # noqa: E402

SENSITIVE = ["sex", "age_band", "ethnicity", "country"]
CONTRACT, LABEL = "clinical-tabular", "diabetes"


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return timings


def report(name: str, rows: int, timings: list[float]) -> float:
    """Print best and median; return the median rows per second (the figure)."""
    best, median = min(timings), statistics.median(timings)
    print(f"{name:<28} best {best:7.3f} s {rows / best:13,.0f} rows/s   median {rows / median:13,.0f} rows/s")
    return rows / median


def pandas_check(frame: pd.DataFrame, check: Check) -> bool:
    """One planned contract check done with plain pandas: the baseline for GX's evaluation."""
    if check.type == "expect_column_to_exist":
        return check.column in frame.columns
    if check.type == "expect_table_row_count_to_be_between":
        rows = len(frame) if check.column is None else int((frame[check.column] == check.group_value).sum())
        return rows >= check.kwargs.get("min_value", 0)
    values = frame[check.column]
    if check.type == "expect_column_values_to_not_be_null":
        return not values.isna().any()
    if check.type == "expect_column_values_to_be_unique":
        return bool(values.is_unique)
    if check.type == "expect_column_values_to_be_in_type_list":
        return str(values.dtype) in check.kwargs["type_list"]
    if check.type == "expect_column_values_to_be_in_set":
        return bool(values.dropna().isin(check.kwargs["value_set"]).all())
    low, high = check.kwargs.get("min_value"), check.kwargs.get("max_value")
    if check.type == "expect_column_values_to_be_between":
        present = values.dropna()
        return bool(((low is None or present >= low) & (high is None or present <= high)).all())
    if check.type == "expect_column_mean_to_be_between":
        mean = float(values.mean())
        return (low is None or mean >= low) and (high is None or mean <= high)
    if check.type == "expect_column_values_to_not_match_regex":
        return not values.dropna().astype(str).str.contains(check.kwargs["regex"], regex=True).any()
    # A suite that gains a check type this baseline does not know must not shrink the baseline.
    raise NotImplementedError(f"no pandas equivalent for {check.type} in the baseline")


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
    contract = report(
        "contract (clinical-tabular)",
        rows,
        timed(lambda: results.append(validate(frame, CONTRACT, SENSITIVE, LABEL)), repeats),
    )
    print(f"  {results[-1].evaluated} expectations, success={results[-1].success}")
    checks = plan_checks(load_contract(CONTRACT), frame, LABEL, SENSITIVE).checks
    held: list[bool] = []
    bare_contract = report(
        "  the same checks, pandas",
        rows,
        timed(lambda: held.extend(pandas_check(frame, c) for c in checks), repeats),
    )
    print(f"  {len(checks)} checks, all held={all(held)}")

    target = default_target(countries)
    makeup = report("make-up comparison", rows, timed(lambda: compare_makeup(frame, target), repeats))
    bare_makeup = report(
        "  bare value_counts",
        rows,
        timed(lambda: [frame[a].dropna().astype(str).value_counts() for a in target], repeats),
    )
    emit(
        "data",
        [
            figure(
                f"{CONTRACT} contract (Great Expectations), {rows:,} rows",
                contract,
                "rows/s",
                "the same checks in plain pandas",
                bare_contract,
                "higher",
            ),
            figure(
                f"make-up comparison, {rows:,} rows",
                makeup,
                "rows/s",
                "bare pandas value_counts per attribute",
                bare_makeup,
                "higher",
            ),
        ],
    )


if __name__ == "__main__":
    arguments = [int(argument) for argument in sys.argv[1:3]]
    main(*arguments)
