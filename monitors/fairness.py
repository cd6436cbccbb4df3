"""Subgroup performance and the gaps between subgroups, per sensitive attribute.

A gap is only as good as the groups it compares. A group enters the comparison when it
holds at least ``min_group_size`` scored cases and both outcome classes; smaller groups are
listed as "insufficient evidence" instead of being silently pooled or treated as passing, and
counted in ``fairness/insufficient_groups/<attr>`` so that a policy can refuse to pass a trial
that left a group unexamined. With fewer than two qualifying groups a gap is None, never 0:
"no measured disparity" and "no evidence" must not look the same in a report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from monitors.base import EvalBatch, MetricPoint, Monitor, MonitorResult
from monitors.class_scores import ClassScores

ASSESSED = "assessed"
INSUFFICIENT = "insufficient evidence"
MISSING_GROUP = "unknown"

GAP_METRICS = ("auroc_gap", "tpr_gap", "fpr_gap", "eq_odds_diff", "worst_group_auroc")
INSUFFICIENT_GROUPS = "insufficient_groups"


def metric_key(metric: str, attribute: str) -> str:
    """Stable metric key, e.g. ``fairness/auroc_gap/ethnicity``."""
    return f"fairness/{metric}/{attribute}"


class _Codebook:
    """Group label <-> integer code for one attribute, stable across batches."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self._codes: dict[str, int] = {}

    def encode(self, values: Any) -> np.ndarray:
        # Factorise first and stringify only the distinct values: a million labels, a handful of groups.
        local, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        names = [str(u) for u in uniques] + [MISSING_GROUP]
        mapping = np.array([self._code(name) for name in names], dtype=np.int64)
        # Missing values (code -1) become their own visible group rather than vanishing.
        return mapping[local]

    def _code(self, name: str) -> int:
        if name not in self._codes:
            self._codes[name] = len(self.labels)
            self.labels.append(name)
        return self._codes[name]


class SubgroupMonitor(Monitor):
    """AUROC, TPR and FPR per group of each attribute, and the max-min gaps between qualifying groups.

    ``fairness/eq_odds_diff/<attr>`` is the equalized-odds difference, max(TPR gap, FPR gap).
    ``fairness/worst_group_auroc/<attr>`` is the lowest AUROC among qualifying groups (None with
    fewer than two, like the gaps, because it is a comparison across groups).
    ``fairness/insufficient_groups/<attr>`` counts the groups left out for lack of evidence.
    """

    name = "fairness"

    def __init__(self, attributes: list[str], min_group_size: int = 100, threshold: float = 0.5) -> None:
        if min_group_size < 1:
            raise ValueError(f"min_group_size must be at least 1, got {min_group_size}")
        self.attributes = list(attributes)
        self.min_group_size = min_group_size
        self.threshold = threshold
        self._books = {a: _Codebook() for a in self.attributes}
        # One pair of sorted score arrays per group of each attribute.
        self._groups: dict[str, list[ClassScores]] = {a: [] for a in self.attributes}

    def _absorb(self, batch: EvalBatch) -> None:
        missing = [a for a in self.attributes if a not in batch.attributes]
        if missing:
            raise ValueError(
                f"batch lacks sensitive attribute(s) {missing}; it has {sorted(batch.attributes)}"
            )
        s = np.asarray(batch.y_score, dtype=float)
        scored = np.flatnonzero(np.isfinite(s))
        # One sort by score for the whole batch; every group's slice below is then already sorted.
        by_score = scored[np.argsort(s[scored], kind="stable")]
        s = s[by_score]
        positive = np.asarray(batch.y_true, dtype=float)[by_score] > 0.5
        for attr in self.attributes:
            codes = self._books[attr].encode(batch.attributes[attr])[by_score]
            groups = self._groups[attr]
            groups.extend(ClassScores() for _ in range(len(self._books[attr].labels) - len(groups)))
            # A stable sort by group code (narrow keys sort in linear time) keeps score order within groups.
            narrow = codes.astype(np.int16) if len(groups) < 2**15 else codes
            order = np.argsort(narrow, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(groups) + 1))
            for code, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                if hi > lo:
                    idx = order[lo:hi]
                    groups[code].add(positive[idx], s[idx], presorted=True)

    def _rows(self, attr: str) -> list[dict[str, Any]]:
        labels = self._books[attr].labels
        rows = []
        for code in sorted(range(len(labels)), key=lambda c: labels[c]):
            group = self._groups[attr][code]
            size, n_pos = group.size, int(group.pos.size)
            if size == 0:
                continue
            # Predicted positive: scored at or above the threshold, one tail of each sorted array.
            tp = n_pos - int(np.searchsorted(group.pos, self.threshold, side="left"))
            fp = int(group.neg.size - np.searchsorted(group.neg, self.threshold, side="left"))
            qualifies = size >= self.min_group_size and 0 < n_pos < size
            rows.append(
                {
                    "group": labels[code],
                    "n": size,
                    "positives": n_pos,
                    "auroc": group.auroc(),
                    "tpr": tp / n_pos if n_pos else None,
                    "fpr": fp / (size - n_pos) if size > n_pos else None,
                    "status": ASSESSED if qualifies else INSUFFICIENT,
                }
            )
        return rows

    @staticmethod
    def _gaps(rows: list[dict[str, Any]]) -> dict[str, float | None]:
        insufficient = float(sum(r["status"] == INSUFFICIENT for r in rows))
        ok = [r for r in rows if r["status"] == ASSESSED]
        if len(ok) < 2:
            return {**dict.fromkeys(GAP_METRICS), INSUFFICIENT_GROUPS: insufficient}

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
            INSUFFICIENT_GROUPS: insufficient,
        }

    def _evaluate(self) -> dict[str, tuple[list[dict[str, Any]], dict[str, float | None]]]:
        out = {}
        for attr in self.attributes:
            rows = self._rows(attr)
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
