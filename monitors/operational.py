"""Latency, errors and throughput of the sandbox endpoint, per HTTP request.

Operational evidence is per request, not per case: one request may carry many cases, and a
request that failed may have carried none. Latency percentiles include failed requests
(a timeout is a slow answer a user would have waited for); non-finite latencies (no answer
at all) are left out of the percentiles but still count as errors when ``ok`` is false.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from monitors import stats
from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult

P50, P95, P99 = "latency/p50_ms", "latency/p95_ms", "latency/p99_ms"
ERROR_RATE = "ops/error_rate"
REQUESTS = "ops/requests"
THROUGHPUT = "ops/throughput_rps"

HISTOGRAM_BINS = 30


class OperationalMonitor(Monitor):
    """Request latency percentiles, error rate, request count and throughput.

    Throughput is requests divided by the seconds between the first and the last ``update``,
    read from ``clock`` (``time.monotonic`` unless a test or a replay supplies its own); it is
    None until two updates lie some time apart.
    """

    name = "operational"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._latency: list[np.ndarray] = []
        self._requests = 0
        self._failed = 0
        self._first_at: float | None = None
        self._last_at: float | None = None

    def _absorb(self, batch: EvalBatch) -> None:
        now = self._clock()
        if self._first_at is None:
            self._first_at = now
        self._last_at = now
        latency = np.asarray(batch.latency_ms, dtype=float)
        ok = np.asarray(batch.ok, dtype=bool)
        if latency.shape != ok.shape:
            raise ValueError(f"latency_ms has {latency.size} requests but ok has {ok.size}")
        self._latency.append(latency[np.isfinite(latency)])
        self._requests += int(ok.size)
        self._failed += int((~ok).sum())

    def _latencies(self) -> np.ndarray:
        if not self._latency:
            return np.zeros(0)
        self._latency = [np.concatenate(self._latency)]
        return self._latency[0]

    def _values(self) -> dict[str, float | None]:
        pcts = stats.percentiles(self._latencies(), [50, 95, 99])
        p50, p95, p99 = pcts if pcts is not None else (None, None, None)
        elapsed = 0.0
        if self._first_at is not None and self._last_at is not None:
            elapsed = self._last_at - self._first_at
        return {
            P50: p50,
            P95: p95,
            P99: p99,
            ERROR_RATE: self._failed / self._requests if self._requests else None,
            REQUESTS: float(self._requests),
            THROUGHPUT: self._requests / elapsed if elapsed > 0 else None,
        }

    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        self._absorb(batch)
        return [MetricPoint(key, value, step) for key, value in self._values().items() if value is not None]

    def result(self) -> MonitorResult:
        latency = self._latencies()
        figures: dict[str, dict[str, Any]] = {}
        if latency.size:
            counts, edges = np.histogram(latency, bins=HISTOGRAM_BINS)
            # ``edges`` is what the HTML report draws; ``bin_edges_ms`` names the unit for other readers.
            figures["latency_histogram"] = {
                "edges": edges.tolist(),
                "bin_edges_ms": edges.tolist(),
                "counts": counts.tolist(),
            }
        notes = [f"{self._requests} request(s), {self._failed} not ok."]
        if self._requests and latency.size < self._requests:
            notes.append(f"{self._requests - latency.size} request(s) without a measured latency.")
        return MonitorResult(monitor=self.name, values=self._values(), figures=figures, notes=notes)
