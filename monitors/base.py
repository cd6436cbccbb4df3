"""The monitor contract: pure computations over batches of evaluation records.

Monitors never touch Docker, HTTP or MLflow. The orchestrator turns the gateway's traffic
records into :class:`EvalBatch` objects, feeds them to ``update`` while the workload runs
(the returned points are streamed to MLflow with their step) and calls ``result`` once at
the end for the summary values, evidence tables and figure data the exit report needs.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class MetricPoint:
    """One metric value at one step, ready to be logged (``key`` uses ``/`` separated names)."""

    key: str
    value: float
    step: int
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass
class EvalBatch:
    """A batch of evaluation evidence.

    Per-case arrays (``y_true``, ``y_score``, every array in ``attributes`` and every array in
    ``features``) are aligned with each other; ``y_score`` is NaN where the model gave no usable
    answer for the case. ``features`` holds the model's input values per case (what the drift
    monitor compares with the reference population); it is None when the collector does not
    pass them. Per-request arrays (``latency_ms``, ``ok``) are aligned with each other: one
    entry per HTTP request, which may have carried many cases.
    """

    y_true: np.ndarray
    y_score: np.ndarray
    attributes: dict[str, np.ndarray]
    latency_ms: np.ndarray
    ok: np.ndarray
    features: dict[str, np.ndarray] | None = None

    @staticmethod
    def concat(batches: list[EvalBatch]) -> EvalBatch:
        if not batches:
            return EvalBatch(np.zeros(0), np.zeros(0), {}, np.zeros(0), np.zeros(0, dtype=bool))
        keys = batches[0].attributes.keys()
        with_features = [b.features is not None for b in batches]
        if any(with_features) and not all(with_features):
            raise ValueError("cannot concatenate batches with and without features")
        features = None
        if batches[0].features is not None:
            names = batches[0].features.keys()
            features = {k: np.concatenate([b.features[k] for b in batches if b.features]) for k in names}
        return EvalBatch(
            y_true=np.concatenate([b.y_true for b in batches]),
            y_score=np.concatenate([b.y_score for b in batches]),
            attributes={k: np.concatenate([b.attributes[k] for b in batches]) for k in keys},
            latency_ms=np.concatenate([b.latency_ms for b in batches]),
            ok=np.concatenate([b.ok for b in batches]),
            features=features,
        )


class MonitorResult(BaseModel):
    """What a monitor concludes at the end of a trial.

    ``values`` maps stable metric keys (``perf/auroc``, ``latency/p95_ms`` ...) to a number, or
    to ``None`` when there was not enough evidence to compute it. ``intervals`` holds 95%
    confidence intervals where the monitor computes them. ``tables`` holds evidence rows for
    the report, ``figures`` holds plain data for plots (no rendering happens here).
    """

    model_config = ConfigDict(frozen=True)

    monitor: str = Field(description="Name of the monitor that produced this result.")
    values: dict[str, float | None] = Field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class Monitor(abc.ABC):
    """Accumulates evidence across batches; ``update`` is called once per batch, in order."""

    name: str = "monitor"

    @abc.abstractmethod
    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        """Absorb one batch and return the running metric points for ``step``."""

    @abc.abstractmethod
    def result(self) -> MonitorResult:
        """Final values over everything seen so far."""


class Prefixed(Monitor):
    """Another monitor's evidence under a key prefix, so two populations never share metric keys.

    Developer traffic in the observation window is measured by the same monitors as evaluation
    traffic, reported apart: ``developer/latency/p95_ms`` beside ``latency/p95_ms``. Figures are
    left to the evaluation monitors, whose report sections draw them.
    """

    def __init__(self, inner: Monitor, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix
        self.name = f"{prefix.strip('/')}-{inner.name}"

    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        return [
            MetricPoint(self._prefix + p.key, p.value, p.step, p.timestamp_ms)
            for p in self._inner.update(batch, step)
        ]

    def result(self) -> MonitorResult:
        inner = self._inner.result()
        return MonitorResult(
            monitor=self.name,
            values={self._prefix + k: v for k, v in inner.values.items()},
            intervals={self._prefix + k: v for k, v in inner.intervals.items()},
            notes=inner.notes,
        )
