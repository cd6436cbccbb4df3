"""Metric streaming into a real MLflow tracking server: MetricStreamer against raw ``log_batch``.

Starts ``mlflow server`` (SQLite store in a temp dir, a free local port) and sends the same
points both ways, each into a fresh run (MLflow stores one row per (key, step, timestamp, value),
so a second send of the same points into the same run would be cheaper): raw
``MlflowClient.log_batch`` calls of 1000 points one after the other, and ``MetricStreamer.put``
followed by ``close`` (the time until every point is stored). Prints points per second of each
and their ratio, streamer / raw (target: 0.9 or more).

    python bench/bench_streaming.py [--points 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' server helper

from bench.summary import emit, figure  # noqa: E402
from monitors.base import MetricPoint  # noqa: E402
from orchestrator.tracking import MetricStreamer  # noqa: E402
from tests.integration.mlflow_server import mlflow_server  # noqa: E402

KEYS = 50


def make_points(total: int) -> list[MetricPoint]:
    """Points as monitors emit them: every key once per step, steps in order."""
    base = int(time.time() * 1000)
    return [
        MetricPoint(f"bench/metric_{k:02d}", (step * KEYS + k) / total, step, base + step)
        for step in range(total // KEYS)
        for k in range(KEYS)
    ]


def raw(client, run_id: str, points: list[MetricPoint]) -> float:  # type: ignore[no-untyped-def]
    from mlflow.entities import Metric

    started = time.perf_counter()
    for i in range(0, len(points), 1000):
        chunk = points[i : i + 1000]
        metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in chunk]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    return time.perf_counter() - started


def streamed(client, run_id: str, points: list[MetricPoint]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    streamer = MetricStreamer(client, run_id)
    for i in range(0, len(points), KEYS):  # one monitor update's worth of points per put
        streamer.put(points[i : i + KEYS])
    stats = streamer.close(timeout_s=600)
    elapsed = time.perf_counter() - started
    assert stats.sent == len(points) and stats.pending == 0, stats
    return elapsed


def main(total: int, repeat: int) -> None:
    from mlflow import MlflowClient

    points = make_points(total)
    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp) / "store") as server:
        client = MlflowClient(server.url)
        experiment = client.create_experiment("bench-streaming")
        # One untimed round warms both paths (connections, the server's first queries).
        for send in (raw, streamed):
            send(client, client.create_run(experiment).info.run_id, points[: 5 * KEYS * 20])
        raw_s, stream_s = [], []
        for _ in range(repeat):
            raw_s.append(raw(client, client.create_run(experiment).info.run_id, points))
            stream_s.append(streamed(client, client.create_run(experiment).info.run_id, points))
        for run_id in [r.info.run_id for r in client.search_runs([experiment], max_results=1)]:
            assert len(client.get_metric_history(run_id, "bench/metric_00")) == len(points) // KEYS
    raw_rate = len(points) / statistics.median(raw_s)
    stream_rate = len(points) / statistics.median(stream_s)
    print(f"metric streaming into mlflow server: {len(points):,} points x {repeat} runs (median)")
    print(f"  raw log_batch (1000/call)  {raw_rate:10,.0f} points/s")
    print(f"  MetricStreamer             {stream_rate:10,.0f} points/s")
    print(f"  ratio streamer / raw       {stream_rate / raw_rate:10.2f}  (target >= 0.9)")
    emit(
        "streaming",
        [
            figure(
                "MetricStreamer into mlflow server",
                stream_rate,
                "points/s",
                "raw log_batch, 1000 points per call",
                raw_rate,
                "higher",
                ">= 0.9",
            )
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    main(args.points, args.repeat)
