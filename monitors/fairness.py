"""Subgroup performance and the gaps between subgroups, per sensitive attribute.

A gap is only as good as the groups it compares. A group enters the comparison when it
holds at least ``min_group_size`` scored cases and both outcome classes; smaller groups are
listed as "insufficient evidence" instead of being silently pooled or treated as passing.
With fewer than two qualifying groups a gap is None, never 0: "no measured disparity" and
"no evidence" must not look the same in a report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from monitors import stats
from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult

ASSESSED = "assessed"
INSUFFICIENT = "insufficient evidence"
MISSING_GROUP = "unknown"

GAP_METRICS = ("auroc_gap", "tpr_gap", "fpr_gap", "eq_odds_diff", "worst_group_auroc")


def metric_key(metric: str, attribute: str) -> str:
    """Stable metric key, e.g. ``fairness/auroc_gap/ethnicity``."""
    return f"fairness/{metric}/{attribute}"


def _group_labels(values: Any) -> np.ndarray:
    # Missing attribute values form their own visible group rather than vanishing from the table.
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    return series.where(series.notna(), MISSING_GROUP).astype(str).to_numpy(dtype=object)


class SubgroupMonitor(Monitor):
    """AUROC, TPR and FPR per group of each attribute, and the max-min gaps between qualifying groups.

    ``fairness/eq_odds_diff/<attr>`` is the equalized-odds difference, max(TPR gap, FPR gap).
    ``fairness/worst_group_auroc/<attr>`` is the lowest AUROC among qualifying groups (None with
    fewer than two, like the gaps, because it is a comparison across groups).
    """

    name = "fairness"

    def __init__(self, attributes: list[str], min_group_size: int = 100, threshold: float = 0.5) -> None:
        if min_group_size < 1:
            raise ValueError(f"min_group_size must be at least 1, got {min_group_size}")
        self.attributes = list(attributes)
        self.min_group_size = min_group_size
        self.threshold = threshold
        self._y: list[np.ndarray] = []
        self._s: list[np.ndarray] = []
        self._groups: dict[str, list[np.ndarray]] = {a: [] for a in self.attributes}

    def _absorb(self, batch: EvalBatch) -> None:
        s = np.asarray(batch.y_score, dtype=float)
        scored = np.isfinite(s)
        missing = [a for a in self.attributes if a not in batch.attributes]
        if missing:
            raise ValueError(
                f"batch lacks sensitive attribute(s) {missing}; it has {sorted(batch.attributes)}"
            )
        self._y.append(np.asarray(batch.y_true, dtype=float)[scored])
        self._s.append(s[scored])
        for attr in self.attributes:
            self._groups[attr].append(_group_labels(batch.attributes[attr])[scored])

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if not self._y:
            return np.zeros(0), np.zeros(0), {a: np.zeros(0, dtype=object) for a in self.attributes}
        self._y, self._s = [np.concatenate(self._y)], [np.concatenate(self._s)]
        self._groups = {a: [np.concatenate(g)] for a, g in self._groups.items()}
        return self._y[0], self._s[0], {a: g[0] for a, g in self._groups.items()}

    def _rows(self, y: np.ndarray, s: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        for group in sorted(set(labels.tolist())):
            mask = labels == group
            y_g, s_g = y[mask], s[mask]
            n, positives = int(mask.sum()), int((y_g > 0.5).sum())
            tpr, fpr = stats.tpr_fpr(y_g, s_g, self.threshold)
            qualifies = n >= self.min_group_size and 0 < positives < n
            rows.append(
                {
                    "group": group,
                    "n": n,
                    "positives": positives,
                    "auroc": stats.auroc(y_g, s_g),
                    "tpr": tpr,
                    "fpr": fpr,
                    "status": ASSESSED if qualifies else INSUFFICIENT,
                }
            )
        return rows

    @staticmethod
    def _gaps(rows: list[dict[str, Any]]) -> dict[str, float | None]:
        ok = [r for r in rows if r["status"] == ASSESSED]
        if len(ok) < 2:
            return dict.fromkeys(GAP_METRICS)

        def spread(col: str) -> float:
            vals = [float(r[col]) for r in ok]
            return max(vals) - min(vals)

        tpr_gap, fpr_gap = spread("tpr"), spread("fpr")
        return {
            "auroc_gap": spread("auroc"),
            "tpr_gap": tpr_gap,
            "fpr_gap": fpr_gap,
            "eq_odds_diff": max(tpr_gap, fpr_gap),
            "worst_group_auroc": min(float(r["auroc"]) for r in ok),
        }

    def _evaluate(self) -> dict[str, tuple[list[dict[str, Any]], dict[str, float | None]]]:
        y, s, groups = self._arrays()
        out = {}
        for attr in self.attributes:
            rows = self._rows(y, s, groups[attr])
            out[attr] = (rows, self._gaps(rows))
        return out

    def update(self, batch: EvalBatch, step: int) -> list[MetricPoint]:
        self._absorb(batch)
        points = []
        for attr, (_, gaps) in self._evaluate().items():
            for metric, value in gaps.items():
                if value is not None:
                    points.append(MetricPoint(metric_key(metric, attr), value, step))
        return points

    def _notes(self, attr: str, rows: list[dict[str, Any]]) -> list[str]:
        notes = []
        ok = [r for r in rows if r["status"] == ASSESSED]
        if len(ok) >= 2:
            worst = min(ok, key=lambda r: r["auroc"])
            best = max(ok, key=lambda r: r["auroc"])
            notes.append(
                f"{attr}: lowest AUROC in '{worst['group']}' ({worst['auroc']:.2f}) "
                f"vs best '{best['group']}' ({best['auroc']:.2f})"
            )
        else:
            notes.append(
                f"{attr}: fewer than 2 groups with at least {self.min_group_size} cases and both outcome "
                "classes; subgroup gaps not computed (insufficient evidence)"
            )
        thin = [r for r in rows if r["status"] == INSUFFICIENT]
        if thin:
            listed = ", ".join(f"'{r['group']}' (n={r['n']}, positives={r['positives']})" for r in thin)
            notes.append(f"{attr}: insufficient evidence for {listed}; excluded from the gaps")
        return notes

    def result(self) -> MonitorResult:
        values: dict[str, float | None] = {}
        tables: dict[str, list[dict[str, Any]]] = {}
        notes: list[str] = []
        for attr, (rows, gaps) in self._evaluate().items():
            tables[f"subgroups/{attr}"] = rows
            values.update({metric_key(metric, attr): value for metric, value in gaps.items()})
            notes.extend(self._notes(attr, rows))
        return MonitorResult(monitor=self.name, values=values, tables=tables, notes=notes)
