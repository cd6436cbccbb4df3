"""Time of every tabular monitor over one million evaluation records.

The records are a synthetic SEA population (``generate_sea_population``) with model scores, its
four sensitive attributes and six input features; the drift monitor compares them with the
reference population. Each monitor sees the records in ``--batches`` batches (cumulative values
after every batch, as during a trial) and then produces its final result (with 200 bootstrap
replicates for the intervals). Prints the time of each monitor and the total (target: 5 s or less).

Baseline, measured in the same run: the same monitors given all the records as one batch (one
update, then the result). The ratio is what reporting cumulative values after every batch costs
over computing the results once at the end.

    python bench/bench_monitors.py [--rows 1000000] [--batches 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.summary import emit, figure  # noqa: E402
from monitors import EvalBatch, default_monitors  # noqa: E402
from orchestrator.data.synthetic import (  # noqa: E402
    available_countries,
    generate_reference_population,
    generate_sea_population,
)

ATTRIBUTES = ["sex", "age_band", "ethnicity", "country"]
FEATURES = ["age", "sex", "bmi", "systolic_bp", "smoking", "family_history"]


def batches(rows: int, n_batches: int) -> list[EvalBatch]:
    frame = generate_sea_population(dict.fromkeys(available_countries(), 1.0), rows, seed=7)
    rng = np.random.default_rng(7)
    y = frame["diabetes"].to_numpy(dtype=float)
    # Scores with some skill; ~0.5% unanswered, as a model server may return for bad rows.
    score = 1 / (1 + np.exp(-(1.6 * (y - 0.5) + 0.9 * rng.normal(size=rows) - 1.0)))
    score[rng.random(rows) < 0.005] = np.nan
    attributes = {a: frame[a].to_numpy() for a in ATTRIBUTES}
    features = {f: frame[f].to_numpy() for f in FEATURES}
    out = []
    for idx in np.array_split(np.arange(rows), n_batches):
        requests = max(1, idx.size // 100)  # 100 cases per request
        out.append(
            EvalBatch(
                y_true=y[idx],
                y_score=score[idx],
                attributes={k: v[idx] for k, v in attributes.items()},
                latency_ms=rng.gamma(2.0, 40.0, requests),
                ok=rng.random(requests) > 0.001,
                features={k: v[idx] for k, v in features.items()},
            )
        )
    return out


def run_once(data: list[EvalBatch], reference) -> dict[str, float]:  # type: ignore[no-untyped-def]
    monitors = default_monitors(ATTRIBUTES, reference=reference, features=FEATURES)
    timings = dict.fromkeys((m.name for m in monitors), 0.0)
    for step, batch in enumerate(data):
        for m in monitors:
            started = time.perf_counter()
            m.update(batch, step)
            timings[m.name] += time.perf_counter() - started
    for m in monitors:
        started = time.perf_counter()
        m.result()
        timings[m.name] += time.perf_counter() - started
    return timings


def main(rows: int, n_batches: int, repeat: int) -> None:
    data = batches(rows, n_batches)
    whole = batches(rows, 1)  # the same records (same seed), as one batch
    reference = generate_reference_population(20_000, seed=2024)
    runs, once = [], []
    for _ in range(repeat):  # alternating, so load on the machine hits both alike
        runs.append(run_once(data, reference))
        once.append(sum(run_once(whole, reference).values()))
    print(f"tabular monitors: {rows:,} records in {n_batches} batches, {repeat} runs (median)")
    for name in runs[0]:
        print(f"  {name:<12} {statistics.median(r[name] for r in runs):7.3f} s")
    total = statistics.median(sum(r.values()) for r in runs)
    print(f"  {'total':<12} {total:7.3f} s  (target <= 5 s)")
    baseline = statistics.median(once)
    print(f"  {'one batch':<12} {baseline:7.3f} s  (baseline: every record in one update)")
    emit(
        "monitors",
        [
            figure(
                f"tabular monitors, {rows:,} records in {n_batches} batches",
                total,
                "s",
                "the same monitors, the records in one batch",
                baseline,
                "lower",
                "total <= 5 s",
            )
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    main(args.rows, args.batches, args.repeat)
