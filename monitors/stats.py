"""Vectorised statistics over labels ``y`` (0/1) and scores ``s`` (probability of the positive class).

Every function returns ``None`` rather than a number when the evidence cannot support one
(an empty sample, a single class for AUROC), because a made-up 0 or 0.5 would read as a
measured value in a regulator's report.

Everything a binary risk model's discrimination and calibration depend on is summarised by
the distinct scores ("levels") and the number of positives and negatives at each: the
``*_from_levels`` forms work on that summary, which a monitor rebuilds after each batch from
the sorted scores it keeps (:class:`monitors.class_scores.ClassScores`). Tied scores form one
level, the way scikit-learn counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def labels(y: Any) -> np.ndarray:
    """Boolean positive-class labels from 0/1 (or probability-like) values."""
    return np.asarray(y, dtype=float) > 0.5


def scores(s: Any) -> np.ndarray:
    return np.asarray(s, dtype=float)


def level_starts(s_sorted: np.ndarray) -> np.ndarray:
    """Index of the first case of each run of equal scores in ascending ``s_sorted``."""
    if s_sorted.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])


def split(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted scores of the positive and of the negative cases."""
    y_arr, s_arr = labels(y), scores(s)
    return np.sort(s_arr[y_arr]), np.sort(s_arr[~y_arr])


def levels(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (ascending) over both classes, with the positives and negatives at each."""
    starts_p, starts_n = level_starts(pos), level_starts(neg)
    count_p = np.diff(np.r_[starts_p, pos.size]).astype(float)
    count_n = np.diff(np.r_[starts_n, neg.size]).astype(float)
    return merge_levels(
        (pos[starts_p], count_p, np.zeros(count_p.size)), (neg[starts_n], np.zeros(count_n.size), count_n)
    )


Levels = tuple[np.ndarray, np.ndarray, np.ndarray]


def merge_levels(a: Levels, b: Levels) -> Levels:
    """Union of two (values, positives, negatives) summaries, each with distinct ascending values."""
    if a[0].size == 0:
        return b
    if b[0].size == 0:
        return a
    values = np.concatenate([a[0], b[0]])
    # Two sorted runs: a stable sort merges them in linear time.
    order = np.argsort(values, kind="stable")
    values = values[order]
    starts = level_starts(values)
    n_pos = np.add.reduceat(np.concatenate([a[1], b[1]])[order], starts)
    n_neg = np.add.reduceat(np.concatenate([a[2], b[2]])[order], starts)
    return values[starts], n_pos, n_neg


def auroc_from_levels(n_pos: np.ndarray, n_neg: np.ndarray) -> float | None:
    """Mann-Whitney AUROC from per-level class counts (ascending scores; ties count one half)."""
    total_pos, total_neg = float(n_pos.sum()), float(n_neg.sum())
    if total_pos == 0 or total_neg == 0:
        return None
    neg_below = np.cumsum(n_neg) - n_neg
    return float((n_pos * (neg_below + 0.5 * n_neg)).sum() / (total_pos * total_neg))


def average_precision_from_levels(n_pos: np.ndarray, n_neg: np.ndarray) -> float | None:
    """Average precision (scikit-learn's step-wise definition) from ascending per-level class counts."""
    total_pos = float(n_pos.sum())
    if total_pos == 0:
        return None
    # Thresholds go from the highest score down; each level's positives are recalled at its precision.
    tp, fp = np.cumsum(n_pos[::-1]), np.cumsum(n_neg[::-1])
    return float((n_pos[::-1] * (tp / (tp + fp))).sum() / total_pos)


def accuracy_from_levels(
    values: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, threshold: float = 0.5
) -> float | None:
    total = float(n_pos.sum() + n_neg.sum())
    if total == 0:
        return None
    flagged = values >= threshold
    return float((n_pos[flagged].sum() + n_neg[~flagged].sum()) / total)


def brier_from_levels(values: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> float | None:
    total = float(n_pos.sum() + n_neg.sum())
    if total == 0:
        return None
    return float((n_pos * (1.0 - values) ** 2 + n_neg * values**2).sum() / total)


def auroc(y: Any, s: Any) -> float | None:
    """Area under the ROC curve (rank-based, ties count one half); None with only one class present."""
    _, n_pos, n_neg = levels(*split(y, s))
    return auroc_from_levels(n_pos, n_neg)


def average_precision(y: Any, s: Any) -> float | None:
    """Area under the precision-recall curve as average precision; None without a positive case."""
    _, n_pos, n_neg = levels(*split(y, s))
    return average_precision_from_levels(n_pos, n_neg)


def accuracy(y: Any, s: Any, threshold: float = 0.5) -> float | None:
    """Share of cases whose prediction ``s >= threshold`` equals the label."""
    y_arr, s_arr = labels(y), scores(s)
    if y_arr.size == 0:
        return None
    return float(np.mean((s_arr >= threshold) == y_arr))


def brier(y: Any, s: Any) -> float | None:
    """Mean squared difference between score and label."""
    y_arr, s_arr = labels(y), scores(s)
    if y_arr.size == 0:
        return None
    return float(np.mean((s_arr - y_arr) ** 2))


def prevalence(y: Any) -> float | None:
    """Share of positive cases: the average precision a model without skill would reach."""
    y_arr = labels(y)
    return float(y_arr.mean()) if y_arr.size else None


def tpr_fpr(y: Any, s: Any, threshold: float = 0.5) -> tuple[float | None, float | None]:
    """True- and false-positive rates at ``threshold``; each None when its denominator class is absent."""
    y_arr, s_arr = labels(y), scores(s)
    pred = s_arr >= threshold
    n_pos, n_neg = int(y_arr.sum()), int((~y_arr).sum())
    tpr = float((pred & y_arr).sum() / n_pos) if n_pos else None
    fpr = float((pred & ~y_arr).sum() / n_neg) if n_neg else None
    return tpr, fpr


def confusion(y: Any, s: Any, threshold: float = 0.5) -> dict[str, int]:
    """Counts ``tn``, ``fp``, ``fn``, ``tp`` at ``threshold``."""
    y_arr, s_arr = labels(y), scores(s)
    pred = s_arr >= threshold
    return {
        "tn": int((~pred & ~y_arr).sum()),
        "fp": int((pred & ~y_arr).sum()),
        "fn": int((~pred & y_arr).sum()),
        "tp": int((pred & y_arr).sum()),
    }


def percentile(x: Any, q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation as numpy) of the finite values of ``x``."""
    values = percentiles(x, [q])
    return None if values is None else values[0]


def percentiles(x: Any, qs: Sequence[float]) -> list[float] | None:
    """Several percentiles in one pass; None when ``x`` holds no finite value."""
    arr = np.asarray(x, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return None
    return [float(v) for v in np.percentile(arr, list(qs))]


def _thin(columns: dict[str, np.ndarray], max_points: int) -> dict[str, list[float]]:
    size = next(iter(columns.values())).size
    if size > max_points:
        keep = np.unique(np.round(np.linspace(0, size - 1, max_points)).astype(int))
        columns = {k: v[keep] for k, v in columns.items()}
    return {k: v.tolist() for k, v in columns.items()}


def roc_curve_from_levels(n_pos: np.ndarray, n_neg: np.ndarray, max_points: int = 101) -> dict | None:
    """ROC curve points from (0, 0) to (1, 1), evenly thinned to at most ``max_points``."""
    if n_pos.sum() == 0 or n_neg.sum() == 0:
        return None
    # One point per distinct threshold, from the highest score down.
    tpr = np.r_[0.0, np.cumsum(n_pos[::-1]) / n_pos.sum()]
    fpr = np.r_[0.0, np.cumsum(n_neg[::-1]) / n_neg.sum()]
    return _thin({"fpr": fpr, "tpr": tpr}, max_points)


def pr_curve_from_levels(n_pos: np.ndarray, n_neg: np.ndarray, max_points: int = 101) -> dict | None:
    """Precision-recall curve points, from the highest threshold down, thinned to ``max_points``."""
    if n_pos.sum() == 0:
        return None
    tp, fp = np.cumsum(n_pos[::-1]), np.cumsum(n_neg[::-1])
    return _thin({"recall": tp / n_pos.sum(), "precision": tp / (tp + fp)}, max_points)
