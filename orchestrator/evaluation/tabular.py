"""Tabular classifiers: cases sent in batches to ``/invocations``, scored against ground truth.

The collector joins each traffic record back to its cases by id, feeds the monitors batch by
batch (performance, calibration, subgroups, operations and, with a comparable reference
population, drift) and keeps every case's score, so the report's failure cases come from the
same answers the monitors saw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from monitors import default_monitors
from monitors.base import EvalBatch, MetricPoint
from orchestrator.data.prepare import CASE_ID
from orchestrator.data.reference import Reference
from orchestrator.evaluation.base import Evaluation, EvaluationKind, developer_monitor
from orchestrator.gateway import CASE_HEADER
from orchestrator.records import TrafficRecord
from orchestrator.reports.sections import FailureCase
from orchestrator.spec import TrialSpec
from orchestrator.trial_records import DataReady
from orchestrator.workload import Channel, Request, send_all


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


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def payload(frame: pd.DataFrame, columns: list[str]) -> bytes:
    part = frame[columns]
    return json.dumps(
        {"dataframe_split": {"columns": columns, "data": part.to_numpy().tolist()}}, default=_plain
    ).encode()


class TabularEvaluation(Evaluation):
    def __init__(
        self,
        spec: TrialSpec,
        data: pd.DataFrame,
        columns: list[str],
        reference: Reference | None,
        emit: Callable[[list[MetricPoint]], None],
    ) -> None:
        self._spec = spec
        self._data = data
        self._truth = data.set_index(CASE_ID, drop=False)
        self._columns = columns
        self._features = reference.features if reference is not None and reference.assessed else []
        self._emit = emit
        self._scores: dict[str, float] = {}
        self.monitors = default_monitors(spec.data.sensitive_attributes, spec.workload.min_group_size)
        if reference is not None:
            # Without a comparable reference the drift monitor says "not assessed", and why.
            self.monitors.append(reference.drift_monitor())
        self._evaluation = list(self.monitors)
        self._developer = developer_monitor()
        self.monitors.append(self._developer)

    def requests(self) -> list[Request]:
        size = self._spec.workload.batch_size
        batches = [self._data.iloc[i : i + size] for i in range(0, len(self._data), size)]
        return [
            Request("/invocations", payload(frame, self._columns), {CASE_HEADER: ",".join(frame[CASE_ID])})
            for frame in batches
        ]

    def run(self, channel: Channel) -> int:
        return send_all(channel, self.requests(), self.absorb)

    def absorb(self, records: list[TrafficRecord]) -> None:
        evaluation = self.evaluation_records(records)
        if not evaluation:
            return
        case_ids: list[str] = []
        scores = []
        for record in evaluation:
            ids = record.case_ids or []
            case_ids += ids
            usable = record.status == 200
            scores.append(scores_from(record.response, len(ids)) if usable else np.full(len(ids), np.nan))
        y_score = np.concatenate(scores)
        self._scores.update(zip(case_ids, y_score.tolist(), strict=True))
        rows = self._truth.loc[case_ids]
        attributes = self._spec.data.sensitive_attributes
        batch = EvalBatch(
            y_true=rows[self._spec.data.label].to_numpy(dtype=float),
            y_score=y_score,
            # A missing attribute is its own group, not the string "nan".
            attributes={
                a: rows[a].astype(object).fillna("unknown").astype(str).to_numpy() for a in attributes
            },
            features={f: rows[f].to_numpy() for f in self._features} if self._features else None,
            latency_ms=np.array([r.latency_ms for r in evaluation]),
            ok=np.array([r.status == 200 for r in evaluation]),
        )
        self.steps += 1
        points = [p for m in self._evaluation for p in m.update(batch, self.steps)]
        self.points += len(points)
        self._emit(points)

    def failure_cases(self, limit: int = 20) -> list[FailureCase]:
        """The worst misses: positives scored lowest and negatives scored highest."""
        label = self._spec.data.label
        misses = []
        for case_id, score in self._scores.items():
            if score != score:  # NaN: no usable answer, counted as unscored by the monitors
                continue
            expected = int(self._truth.at[case_id, label])
            misses.append(((1.0 - score) if expected == 1 else score, case_id, expected, score))
        misses.sort(reverse=True)
        attributes = self._spec.data.sensitive_attributes
        cases = []
        for _, case_id, expected, score in misses[:limit]:
            row = self._truth.loc[case_id]
            note = ", ".join(f"{a}={row[a]}" for a in attributes if a in row.index)
            cases.append(
                FailureCase(case_id=case_id, expected=expected, predicted=round(score, 4), note=note)
            )
        return cases


class TabularKind(EvaluationKind):
    name: ClassVar[str] = "tabular"
    families: ClassVar[tuple[str, ...]] = ("perf/", "calibration/", "fairness/", "drift/")

    def start(
        self, spec: TrialSpec, data: DataReady, emit: Callable[[list[MetricPoint]], None]
    ) -> TabularEvaluation:
        model = data.model
        if model is None or data.prepared is None:
            raise RuntimeError("step order broken: no model fetched before the workload")
        frame = data.prepared.frame
        columns = model.input_columns or [c for c in frame.columns if c not in {spec.data.label, CASE_ID}]
        return TabularEvaluation(spec, frame, columns, data.reference, emit)
