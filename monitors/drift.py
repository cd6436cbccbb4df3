"""Drift of the model's inputs: the trial population against the population the model was built on.

A model fitted on one population (for example an upper-income-country-like one) and used on
another is only as good as the overlap of the two. Per feature the monitor compares the trial's
values with a reference sample: PSI and the two-sample KS statistic (with its p-value) for
numeric features, PSI over categories for categorical ones (see :mod:`monitors.distribution`).

Values are cumulative over every case sent, scored or not: drift is a property of the
population the model met, not of the answers it gave.

Without a comparable reference (none declared, or one that shares no feature with the model's
inputs) the monitor is built with ``reference=None`` and a reason: it then reports drift as not
assessed (``drift/assessed`` 0, no PSI or KS values), so policy criteria on drift read as
insufficient evidence rather than as a pass or a fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from monitors import distribution as dist
from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult

MAX_PSI = "drift/max_psi"
MAX_KS = "drift/max_ks"
ASSESSED = "drift/assessed"
MISSING = "unknown"


def psi_key(feature: str) -> str:
    return f"drift/psi/{feature}"


def ks_key(feature: str) -> str:
    return f"drift/ks/{feature}"


def ks_pvalue_key(feature: str) -> str:
    return f"drift/ks_pvalue/{feature}"


class _Numeric:
    """Reference summary and running trial summary of one numeric feature."""

    kind = "numeric"

    def __init__(self, reference: np.ndarray) -> None:
        ref = reference[np.isfinite(reference)]
        self.edges = dist.quantile_edges(ref)
        self.ref_bins = dist.bin_counts(ref, self.edges)
        self.ref_values, self.ref_counts = dist.value_counts(ref)
        self.ref_mean = float(ref.mean()) if ref.size else None
        self.bins = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.values, self.counts = np.zeros(0), np.zeros(0, dtype=np.int64)
        self.total, self.sum, self.missing = 0, 0.0, 0

    def add(self, raw: np.ndarray) -> None:
        values = np.asarray(raw, dtype=float)
        finite = values[np.isfinite(values)]
        self.missing += int(values.size - finite.size)
        self.bins += dist.bin_counts(finite, self.edges)
        self.values, self.counts = dist.merge_counts(self.values, self.counts, *dist.value_counts(finite))
        self.total += int(finite.size)
        self.sum += float(finite.sum())

    def measures(self) -> dict[str, float | None]:
        d = dist.ks_statistic(self.ref_values, self.ref_counts, self.values, self.counts)
        return {
            "psi": dist.psi(self.ref_bins, self.bins),
            "ks": d,
            "ks_pvalue": None if d is None else dist.ks_pvalue(d, int(self.ref_counts.sum()), self.total),
        }

    def labels(self) -> list[str]:
        return dist.bin_labels(self.edges)

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ref_bins, self.bins

    def summary(self) -> dict[str, Any]:
        return {
            "reference_mean": self.ref_mean,
            "trial_mean": self.sum / self.total if self.total else None,
        }


class _Categorical:
    """Reference and running trial counts per category of one categorical feature."""

    kind = "categorical"

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = _category_counts(reference)
        self.trial: Counter[str] = Counter()
        self.total, self.missing = 0, 0

    def add(self, raw: np.ndarray) -> None:
        counts = _category_counts(raw)
        self.trial.update(counts)
        self.total += int(np.asarray(raw).size)
        self.missing += counts.get(MISSING, 0)

    def labels(self) -> list[str]:
        # Categories the reference never saw still count: a new category is drift too.
        return sorted(set(self.reference) | set(self.trial))

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        labels = self.labels()
        return (
            np.array([self.reference.get(c, 0) for c in labels], dtype=float),
            np.array([self.trial.get(c, 0) for c in labels], dtype=float),
        )

    def measures(self) -> dict[str, float | None]:
        return {"psi": dist.psi(*self.shares()), "ks": None, "ks_pvalue": None}

    def summary(self) -> dict[str, Any]:
        new = sorted(set(self.trial) - set(self.reference))
        return {"new_categories": new} if new else {}


def _category_counts(values: Any) -> Counter[str]:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
    out: Counter[str] = Counter()
    if counts[0]:
        out[MISSING] += int(counts[0])
    for label, count in zip(uniques, counts[1:], strict=True):
        out[str(label)] += int(count)
    return out


class DriftMonitor(Monitor):
    """PSI and KS per feature between ``reference`` and the trial's feature values.

    ``features`` names the columns to compare; each must exist in ``reference`` and arrive in
    every batch's ``EvalBatch.features``. A feature is numeric when its reference column has a
    numeric (or boolean) dtype, categorical otherwise, unless listed in ``categorical``.
    ``source`` says what the reference is (shown in the report). ``reference=None`` needs a
    ``reason`` and gives a monitor that reports drift as not assessed.
    """

    name = "drift"

    def __init__(
        self,
        reference: pd.DataFrame | None,
        features: list[str],
        categorical: list[str] | None = None,
        *,
        source: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.assessed = reference is not None
        self.features: list[str] = []
        self._state: dict[str, _Numeric | _Categorical] = {}
        self.reference_rows = 0
        if reference is None:
            if not reason:
                raise ValueError("a drift monitor without a reference needs the reason drift is not assessed")
            return
        missing = [f for f in features if f not in reference.columns]
        if missing:
            raise ValueError(f"reference population lacks feature(s) {missing}")
        if not features:
            raise ValueError("DriftMonitor needs at least one feature")
        forced = set(categorical or [])
        self.features = list(features)
        for f in self.features:
            column = reference[f]
            numeric = pd.api.types.is_numeric_dtype(column) and f not in forced
            self._state[f] = (
                _Numeric(column.to_numpy(dtype=float, na_value=np.nan))
                if numeric
                else _Categorical(column.to_numpy(dtype=object))
            )
        self.reference_rows = len(reference)

    def _absorb(self, batch: EvalBatch) -> None:
        if not self.assessed:
            return  # nothing to compare the trial's values with
        if batch.features is None:
            raise ValueError("batch carries no features; the drift monitor needs EvalBatch.features")
        absent = [f for f in self.features if f not in batch.features]
        if absent:
            raise ValueError(f"batch lacks feature(s) {absent}; it has {sorted(batch.features)}")
        for f in self.features:
            try:
                self._state[f].add(batch.features[f])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"feature {f!r}: values are not numeric as in the reference: {exc}") from exc

    def _values(self) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        for f, state in self._state.items():
            m = state.measures()
            values[psi_key(f)] = m["psi"]
            if state.kind == "numeric":
                values[ks_key(f)] = m["ks"]
                values[ks_pvalue_key(f)] = m["ks_pvalue"]
        psis = [v for k, v in values.items() if k.startswith("drift/psi/") and v is not None]
        kss = [v for k, v in values.items() if k.startswith("drift/ks/") and v is not None]
        values[MAX_PSI] = max(psis) if psis else None
        values[MAX_KS] = max(kss) if kss else None
        return values

    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        self._absorb(batch)
        return [MetricPoint(k, v, step) for k, v in self._values().items() if v is not None]

    def _row(self, feature: str, state: _Numeric | _Categorical) -> dict[str, Any]:
        m = state.measures()
        ref, trial = state.shares()
        terms = dist.psi_terms(ref, trial)
        where: dict[str, Any] = {"largest_shift": None}
        if terms is not None:
            # The bin that contributes most to the PSI, with its share on each side: the shift in words.
            top = int(np.argmax(terms))
            label = state.labels()[top]
            where = {
                "largest_shift": f"{feature} {label}"
                if state.kind == "numeric"
                else f"{feature} = '{label}'",
                "largest_shift_reference_share": float(ref[top] / ref.sum()),
                "largest_shift_trial_share": float(trial[top] / trial.sum()),
            }
        row: dict[str, Any] = {
            "feature": feature,
            "kind": state.kind,
            "reference_n": int(ref.sum()),
            "trial_n": int(trial.sum()),
            "trial_missing": state.missing,
            "psi": m["psi"],
            "ks": m["ks"],
            "ks_pvalue": m["ks_pvalue"],
            "status": dist.psi_status(m["psi"]),
            **where,
        }
        row.update(state.summary())
        return row

    def _figure(self, state: _Numeric | _Categorical, row: dict[str, Any]) -> dict[str, Any]:
        ref, trial = state.shares()
        return {
            "kind": state.kind,
            "labels": state.labels(),
            "reference_share": (ref / ref.sum()).tolist() if ref.sum() else [],
            "trial_share": (trial / trial.sum()).tolist() if trial.sum() else [],
            "bin_edges": state.edges.tolist() if isinstance(state, _Numeric) else None,
            "psi": row["psi"],
            "ks": row["ks"],
        }

    def _not_assessed(self) -> MonitorResult:
        figure = {"features": [], "psi": [], "ks": [], "moderate": dist.PSI_MODERATE, "major": dist.PSI_MAJOR}
        return MonitorResult(
            monitor=self.name,
            values={ASSESSED: 0.0, MAX_PSI: None, MAX_KS: None},
            tables={"drift": []},
            figures={"drift_psi": {**figure, "reference": self.source, "not_assessed": self.reason}},
            notes=[f"drift not assessed: {self.reason}"],
        )

    def result(self) -> MonitorResult:
        if not self.assessed:
            return self._not_assessed()
        rows = [self._row(f, state) for f, state in self._state.items()]
        figures = {f"drift/{r['feature']}": self._figure(self._state[r["feature"]], r) for r in rows}
        figures["drift_psi"] = {
            "features": [r["feature"] for r in rows],
            "psi": [r["psi"] for r in rows],
            "ks": [r["ks"] for r in rows],
            "moderate": dist.PSI_MODERATE,
            "major": dist.PSI_MAJOR,
            "reference": self.source,
        }
        described = self.source or f"{self.reference_rows} rows"
        notes = [f"reference population: {described}; features compared: {', '.join(self.features)}"]
        shifted = [r for r in rows if r["psi"] is not None and r["psi"] >= dist.PSI_MODERATE]
        for r in sorted(shifted, key=lambda r: -r["psi"]):
            notes.append(f"{r['feature']}: {r['status']} (PSI {r['psi']:.2f}); {dist.describe_shift(r)}")
        if any(r["trial_n"] == 0 for r in rows):
            notes.append("no trial values for: " + ", ".join(r["feature"] for r in rows if r["trial_n"] == 0))
        values = {ASSESSED: 1.0, **self._values()}
        return MonitorResult(
            monitor=self.name, values=values, tables={"drift": rows}, figures=figures, notes=notes
        )
