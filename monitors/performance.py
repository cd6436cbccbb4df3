"""Discrimination and calibration of a binary risk model, accumulated over the trial.

Every value is cumulative (over all cases seen so far) and splitting the same cases into
different batches changes nothing. The calibration slope and intercept are fitted over groups
of neighbouring scores, exact when the scores take fewer distinct values than there are groups:
at most 1024 groups while the trial runs, which keeps each update cheap, and 65536 for the final
values, where pooling moves a fit over a million continuous scores by less than 1e-6.

Cases the model could not score (NaN) are kept out of the metrics, because imputing a score
would credit or blame the model for an answer it never gave, and are reported instead as
``perf/unscored_rate``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitors import bootstrap, calibration, stats
from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult
from monitors.class_scores import ScoreLevels

AUROC = "perf/auroc"
AUPRC = "perf/auprc"
ACCURACY = "perf/accuracy"
BRIER = "perf/brier"
PREVALENCE = "perf/prevalence"
CASES = "perf/cases"
UNSCORED_RATE = "perf/unscored_rate"
CAL_SLOPE = "calibration/slope"
CAL_INTERCEPT = "calibration/intercept"
ECE = "calibration/ece"

# Metric key -> name of the same metric in monitors.bootstrap.
_BOOTSTRAPPED = {
    AUROC: "auroc",
    AUPRC: "auprc",
    ACCURACY: "accuracy",
    BRIER: "brier",
    ECE: "ece",
    CAL_SLOPE: "slope",
    CAL_INTERCEPT: "intercept",
}


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


class PerformanceMonitor(Monitor):
    """AUROC and AUPRC, accuracy and Brier score, calibration slope, intercept and ECE.

    95% bootstrap intervals accompany every one of them. ``perf/cases`` counts scored cases, the
    evidence base of the other values; ``perf/unscored_rate`` is the share of all cases that came
    back without a usable score; ``perf/prevalence`` is the share of positives among scored cases
    (the AUPRC of a model without skill).
    """

    name = "performance"

    def __init__(self, threshold: float = 0.5, n_boot: int = 200, seed: int = 0) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold
        self.n_boot = n_boot
        self.seed = seed
        self._levels = ScoreLevels()
        self._unscored = 0

    def _absorb(self, batch: EvalBatch) -> None:
        y = np.asarray(batch.y_true, dtype=float)
        s = np.asarray(batch.y_score, dtype=float)
        if y.shape != s.shape:
            raise ValueError(f"y_true has {y.size} cases but y_score has {s.size}")
        scored = np.isfinite(s)
        self._unscored += int((~scored).sum())
        self._levels.add(y[scored] > 0.5, s[scored])

    def _calibration(self, cells: bootstrap.Cells, final: bool) -> tuple[float | None, float | None]:
        lv = self._levels
        if not (lv.n_pos.sum() and lv.n_neg.sum()):
            return None, None
        a, b, c = bootstrap.fit_calibration(cells)
        if final and lv.values.size > cells.n_pos.size:
            # Finer groups for the reported value, started from the coarse fit: a few Newton steps.
            fine = bootstrap.build_cells(
                lv.values, lv.n_pos, lv.n_neg, self.threshold, bootstrap.FINAL_GROUPS
            )
            start = (a, b, c) if np.isfinite([a, b, c]).all() else (0.0, 1.0, 0.0)
            a, b, c = bootstrap.fit_calibration(fine, start)
        return _finite(b), _finite(c)

    def _evaluate(self, final: bool) -> tuple[dict[str, float | None], bootstrap.Cells]:
        lv = self._levels
        values, n_pos, n_neg = lv.values, lv.n_pos, lv.n_neg
        cells = bootstrap.build_cells(values, n_pos, n_neg, self.threshold)
        slope, intercept = self._calibration(cells, final)
        cases = lv.size
        total = cases + self._unscored
        summary = {
            AUROC: stats.auroc_from_levels(n_pos, n_neg),
            AUPRC: stats.average_precision_from_levels(n_pos, n_neg),
            ACCURACY: stats.accuracy_from_levels(values, n_pos, n_neg, self.threshold),
            BRIER: stats.brier_from_levels(values, n_pos, n_neg),
            PREVALENCE: float(n_pos.sum() / cases) if cases else None,
            CAL_SLOPE: slope,
            CAL_INTERCEPT: intercept,
            ECE: calibration.ece_from_levels(values, n_pos, n_neg),
            CASES: float(cases),
            UNSCORED_RATE: self._unscored / total if total else None,
        }
        return summary, cells

    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        self._absorb(batch)
        values, _ = self._evaluate(final=False)
        return [MetricPoint(key, value, step) for key, value in values.items() if value is not None]

    def _confusion_table(self) -> list[dict[str, Any]]:
        lv = self._levels
        flagged = lv.values >= self.threshold
        counts = {
            "tp": int(lv.n_pos[flagged].sum()),
            "fn": int(lv.n_pos[~flagged].sum()),
            "fp": int(lv.n_neg[flagged].sum()),
            "tn": int(lv.n_neg[~flagged].sum()),
        }
        return [
            {
                "actual": actual,
                "predicted_negative": counts[negative],
                "predicted_positive": counts[positive],
                "threshold": self.threshold,
            }
            for actual, negative, positive in (("negative", "tn", "fp"), ("positive", "fn", "tp"))
        ]

    def result(self) -> MonitorResult:
        values, cells = self._evaluate(final=True)
        point = {name: values[key] for key, name in _BOOTSTRAPPED.items()}
        found = bootstrap.bootstrap_intervals(cells, point, n_boot=self.n_boot, seed=self.seed)
        intervals = {key: found[name] for key, name in _BOOTSTRAPPED.items() if name in found}
        lv = self._levels
        reliability = calibration.calibration_bins_from_levels(lv.values, lv.n_pos, lv.n_neg)
        reliability.update(slope=values[CAL_SLOPE], intercept=values[CAL_INTERCEPT])
        figures: dict[str, dict[str, Any]] = {"calibration": reliability}
        roc = stats.roc_curve_from_levels(lv.n_pos, lv.n_neg, max_points=101)
        if roc is not None:
            figures["roc"] = {**roc, "auroc": values[AUROC]}
        pr = stats.pr_curve_from_levels(lv.n_pos, lv.n_neg, max_points=101)
        if pr is not None:
            figures["precision_recall"] = {**pr, "auprc": values[AUPRC], "prevalence": values[PREVALENCE]}
        excluded = f"{self._unscored} case(s) without a usable score were excluded"
        notes = [f"{lv.size} scored cases; {excluded}."]
        if values[AUROC] is None:
            notes.append("AUROC not computed: the scored cases hold only one outcome class.")
        elif values[CAL_SLOPE] is None:
            notes.append("Calibration slope not computed: the recalibration fit did not converge.")
        return MonitorResult(
            monitor=self.name,
            values=values,
            intervals=intervals,
            tables={"confusion_matrix": self._confusion_table(), "calibration_bins": reliability["bins"]},
            figures=figures,
            notes=notes,
        )
