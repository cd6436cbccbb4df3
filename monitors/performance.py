"""Discrimination and calibration of a binary risk model, accumulated over the trial.

Every value is cumulative (over all cases seen so far), so the last streamed point equals
the final summary and splitting the same cases into different batches changes nothing.
Cases the model could not score (NaN) are kept out of the metrics, because imputing a score
would credit or blame the model for an answer it never gave, and are reported instead as
``perf/unscored_rate``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitors import stats
from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult

AUROC = "perf/auroc"
ACCURACY = "perf/accuracy"
BRIER = "perf/brier"
CASES = "perf/cases"
UNSCORED_RATE = "perf/unscored_rate"


class PerformanceMonitor(Monitor):
    """AUROC (with a bootstrap 95% CI), accuracy and Brier score over every scored case.

    ``perf/cases`` counts scored cases, the evidence base of the other values;
    ``perf/unscored_rate`` is the share of all cases that came back without a usable score.
    """

    name = "performance"

    def __init__(self, threshold: float = 0.5, n_boot: int = 200, seed: int = 0) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold
        self.n_boot = n_boot
        self.seed = seed
        self._y: list[np.ndarray] = []
        self._s: list[np.ndarray] = []
        self._unscored = 0

    def _absorb(self, batch: EvalBatch) -> None:
        y = np.asarray(batch.y_true, dtype=float)
        s = np.asarray(batch.y_score, dtype=float)
        if y.shape != s.shape:
            raise ValueError(f"y_true has {y.size} cases but y_score has {s.size}")
        scored = np.isfinite(s)
        self._unscored += int((~scored).sum())
        self._y.append(y[scored])
        self._s.append(s[scored])

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._y:
            return np.zeros(0), np.zeros(0)
        # Collapse to one array so later calls concatenate only the new batches.
        self._y = [np.concatenate(self._y)]
        self._s = [np.concatenate(self._s)]
        return self._y[0], self._s[0]

    def _values(self, y: np.ndarray, s: np.ndarray) -> dict[str, float | None]:
        total = y.size + self._unscored
        return {
            AUROC: stats.auroc(y, s),
            ACCURACY: stats.accuracy(y, s, self.threshold),
            BRIER: stats.brier(y, s),
            CASES: float(y.size),
            UNSCORED_RATE: self._unscored / total if total else None,
        }

    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        self._absorb(batch)
        y, s = self._arrays()
        return [
            MetricPoint(key, value, step) for key, value in self._values(y, s).items() if value is not None
        ]

    def _intervals(self, y: np.ndarray, s: np.ndarray) -> dict[str, tuple[float, float]]:
        def acc(yy: np.ndarray, ss: np.ndarray) -> float | None:
            return stats.accuracy(yy, ss, self.threshold)

        # The default threshold has a vectorised bootstrap; any other goes through the generic loop.
        acc_fn = stats.accuracy if self.threshold == 0.5 else acc
        intervals: dict[str, tuple[float, float]] = {}
        for key, fn in ((AUROC, stats.auroc), (ACCURACY, acc_fn), (BRIER, stats.brier)):
            ci = stats.bootstrap_ci(fn, y, s, n_boot=self.n_boot, seed=self.seed)
            if ci is not None:
                intervals[key] = ci
        return intervals

    def result(self) -> MonitorResult:
        y, s = self._arrays()
        values = self._values(y, s)
        counts = stats.confusion(y, s, self.threshold)
        table = [
            {
                "actual": "negative",
                "predicted_negative": counts["tn"],
                "predicted_positive": counts["fp"],
                "threshold": self.threshold,
            },
            {
                "actual": "positive",
                "predicted_negative": counts["fn"],
                "predicted_positive": counts["tp"],
                "threshold": self.threshold,
            },
        ]
        figures: dict[str, dict[str, Any]] = {"calibration": stats.calibration_bins(y, s, n_bins=10)}
        roc = stats.roc_curve(y, s, max_points=101)
        if roc is not None:
            figures["roc"] = {**roc, "auroc": values[AUROC]}
        notes = [
            f"{int(y.size)} scored cases; {self._unscored} case(s) without a usable score were excluded."
        ]
        if values[AUROC] is None:
            notes.append("AUROC not computed: the scored cases hold only one outcome class.")
        return MonitorResult(
            monitor=self.name,
            values=values,
            intervals=self._intervals(y, s),
            tables={"confusion_matrix": table},
            figures=figures,
            notes=notes,
        )
