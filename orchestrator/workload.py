"""The evaluation workload and the evidence it produces.

The platform sends the trial data to the model through the gateway, exactly as a
developer would, so every evaluation answer is first a traffic record. The collector
joins the records back to ground truth by case id, feeds the monitors batch by batch and
streams their points to MLflow while the workload is still running.
"""

from __future__ import annotations

import json
import math
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from monitors.base import EvalBatch, MetricPoint, Monitor
from orchestrator.gateway import CASE_HEADER
from orchestrator.records import TrafficRecord


class TrafficSink:
    """Receives records from the gateway thread; the workload thread drains and persists them."""

    def __init__(self, capture_file: Path) -> None:
        self._queue: queue.Queue[TrafficRecord] = queue.Queue()
        self._file = capture_file
        self.counts = {"developer": 0, "evaluation": 0, "errors": 0}

    def __call__(self, record: TrafficRecord) -> None:
        self._queue.put(record)

    def drain(self, wait_s: float = 0.0) -> list[TrafficRecord]:
        records = []
        try:
            records.append(self._queue.get(timeout=wait_s) if wait_s else self._queue.get_nowait())
            while True:
                records.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if records:
            with self._file.open("a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(record.model_dump_json() + "\n")
                    self.counts[record.origin] += 1
                    self.counts["errors"] += record.status >= 400
        return records


def scores_from(response: Any, expected: int) -> np.ndarray:
    """Positive-class scores from an MLflow scoring answer; NaN where unusable."""
    scores = np.full(expected, np.nan)
    predictions = response.get("predictions") if isinstance(response, dict) else None
    if not isinstance(predictions, list) or len(predictions) != expected:
        return scores
    for i, item in enumerate(predictions):
        value = item[-1] if isinstance(item, list) and item else item
        if isinstance(value, dict):
            value = next((v for v in reversed(list(value.values())) if isinstance(v, int | float)), None)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            scores[i] = float(value)
    return scores


class EvidenceCollector:
    """Turns evaluation traffic into monitor updates and streamed metric points."""

    def __init__(
        self,
        truth: pd.DataFrame,
        label: str,
        attributes: list[str],
        monitors: list[Monitor],
        emit: Callable[[list[MetricPoint]], None],
        features: list[str] | None = None,
    ) -> None:
        self._truth = truth.set_index("case_id", drop=False)
        self._features = features or []
        self._label = label
        self._attributes = attributes
        self.monitors = monitors
        self._emit = emit
        self.step = 0
        self.points = 0

    def absorb(self, records: list[TrafficRecord]) -> None:
        evaluation = [r for r in records if r.origin == "evaluation" and r.case_ids]
        if not evaluation:
            return
        case_ids: list[str] = []
        scores = []
        for record in evaluation:
            ids = record.case_ids or []
            case_ids += ids
            usable = record.status == 200
            scores.append(scores_from(record.response, len(ids)) if usable else np.full(len(ids), np.nan))
        rows = self._truth.loc[case_ids]
        batch = EvalBatch(
            y_true=rows[self._label].to_numpy(dtype=float),
            y_score=np.concatenate(scores),
            # A missing attribute is its own group, not the string "nan".
            attributes={
                a: rows[a].astype(object).fillna("unknown").astype(str).to_numpy() for a in self._attributes
            },
            features={f: rows[f].to_numpy() for f in self._features} if self._features else None,
            latency_ms=np.array([r.latency_ms for r in evaluation]),
            ok=np.array([r.status == 200 for r in evaluation]),
        )
        self.step += 1
        points = [p for m in self.monitors for p in m.update(batch, self.step)]
        self.points += len(points)
        self._emit(points)


def payload(frame: pd.DataFrame, columns: list[str]) -> bytes:
    part = frame[columns]
    return json.dumps(
        {"dataframe_split": {"columns": columns, "data": part.to_numpy().tolist()}}, default=_plain
    ).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run_workload(
    gateway_url: str,
    token: str,
    data: pd.DataFrame,
    columns: list[str],
    batch_size: int,
    concurrency: int,
    sink: TrafficSink,
    collector: EvidenceCollector,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 30.0,
) -> int:
    """Send every case through the gateway; return the number of requests sent."""
    batches = [data.iloc[i : i + batch_size] for i in range(0, len(data), batch_size)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(frame: pd.DataFrame) -> None:
        try:
            http.post(
                gateway_url + "/invocations",
                content=payload(frame, columns),
                headers={**headers, CASE_HEADER: ",".join(frame["case_id"])},
            )
        except httpx.HTTPError:
            pass  # the gateway records the failure as traffic; nothing is lost here

    done = 0
    with httpx.Client(timeout=timeout_s) as http, ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(send, frame) for frame in batches]
        last = time.monotonic()
        while not all(f.done() for f in futures):
            records = sink.drain(wait_s=0.1)
            collector.absorb(records)
            done = sum(f.done() for f in futures)
            if progress and time.monotonic() - last > 1.0:
                progress(done, len(batches))
                last = time.monotonic()
        for f in futures:
            f.result()
    collector.absorb(sink.drain())
    if progress:
        progress(len(batches), len(batches))
    return len(batches)
