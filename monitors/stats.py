"""Vectorised statistics over labels ``y`` (0/1) and scores ``s`` (probability of the positive class).

Every function returns ``None`` rather than a number when the evidence cannot support one
(an empty sample, a single class for AUROC), because a made-up 0 or 0.5 would read as a
measured value in a regulator's report.

AUROC is the Mann-Whitney statistic with ties counted as one half, computed from per-case
weights so that the point estimate and all bootstrap replicates share one sort: a bootstrap
replicate is just a different weight vector over the same sorted cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], float | None]

# Bound the (replicates x cases) weight matrix so that bootstraps over large trials stay in memory.
_MAX_CELLS = 2_000_000


def _labels(y: Any) -> np.ndarray:
    return np.asarray(y, dtype=float) > 0.5


def _scores(s: Any) -> np.ndarray:
    return np.asarray(s, dtype=float)


def _auroc_weighted(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC for each row of ``weights`` (shape replicates x cases); NaN where a class has no weight."""
    pos = _labels(y)
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    pos_sorted = pos[order]
    # Cases with equal scores form one tie level; within a level a positive beats half the negatives.
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    w = weights[:, order]
    w_pos = np.add.reduceat(w * pos_sorted, starts, axis=1)
    w_neg = np.add.reduceat(w * ~pos_sorted, starts, axis=1)
    neg_below = np.cumsum(w_neg, axis=1) - w_neg
    wins = (w_pos * (neg_below + 0.5 * w_neg)).sum(axis=1)
    pairs = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def _accuracy_weighted(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    correct = (s >= 0.5) == _labels(y)
    return (weights * correct).sum(axis=1) / weights.sum(axis=1)


def _brier_weighted(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    sq = (s - _labels(y)) ** 2
    return (weights * sq).sum(axis=1) / weights.sum(axis=1)


def auroc(y: Any, s: Any) -> float | None:
    """Area under the ROC curve (rank-based, ties count one half); None with only one class present."""
    y_arr, s_arr = _labels(y), _scores(s)
    if y_arr.size == 0:
        return None
    value = _auroc_weighted(y_arr, s_arr, np.ones((1, y_arr.size)))[0]
    return None if np.isnan(value) else float(value)


def accuracy(y: Any, s: Any, threshold: float = 0.5) -> float | None:
    """Share of cases whose prediction ``s >= threshold`` equals the label."""
    y_arr, s_arr = _labels(y), _scores(s)
    if y_arr.size == 0:
        return None
    return float(np.mean((s_arr >= threshold) == y_arr))


def brier(y: Any, s: Any) -> float | None:
    """Mean squared difference between score and label."""
    y_arr, s_arr = _labels(y), _scores(s)
    if y_arr.size == 0:
        return None
    return float(np.mean((s_arr - y_arr) ** 2))


def tpr_fpr(y: Any, s: Any, threshold: float = 0.5) -> tuple[float | None, float | None]:
    """True- and false-positive rates at ``threshold``; each None when its denominator class is absent."""
    y_arr, s_arr = _labels(y), _scores(s)
    pred = s_arr >= threshold
    n_pos, n_neg = int(y_arr.sum()), int((~y_arr).sum())
    tpr = float((pred & y_arr).sum() / n_pos) if n_pos else None
    fpr = float((pred & ~y_arr).sum() / n_neg) if n_neg else None
    return tpr, fpr


def confusion(y: Any, s: Any, threshold: float = 0.5) -> dict[str, int]:
    """Counts ``tn``, ``fp``, ``fn``, ``tp`` at ``threshold``."""
    y_arr, s_arr = _labels(y), _scores(s)
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


def roc_curve(y: Any, s: Any, max_points: int = 101) -> dict[str, list[float]] | None:
    """ROC curve points from (0, 0) to (1, 1), evenly thinned to at most ``max_points``."""
    y_arr, s_arr = _labels(y), _scores(s)
    n_pos, n_neg = int(y_arr.sum()), int((~y_arr).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(-s_arr, kind="mergesort")
    s_desc, y_desc = s_arr[order], y_arr[order]
    # One point per distinct threshold: the last case of each run of equal scores.
    cut = np.r_[np.flatnonzero(np.diff(s_desc)), s_desc.size - 1]
    tps = np.cumsum(y_desc)[cut]
    fps = cut + 1 - tps
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    if tpr.size > max_points:
        keep = np.unique(np.round(np.linspace(0, tpr.size - 1, max_points)).astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def calibration_bins(y: Any, s: Any, n_bins: int = 10) -> dict[str, list[Any]]:
    """Reliability diagram data over equal-width score bins; empty bins carry None."""
    y_arr, s_arr = _labels(y), _scores(s)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.floor(s_arr * n_bins).astype(int), 0, n_bins - 1) if s_arr.size else np.zeros(0, int)
    counts = np.bincount(idx, minlength=n_bins)
    sum_pred = np.bincount(idx, weights=s_arr, minlength=n_bins)
    sum_obs = np.bincount(idx, weights=y_arr.astype(float), minlength=n_bins)
    mean_pred = [float(p / c) if c else None for p, c in zip(sum_pred, counts, strict=True)]
    observed = [float(o / c) if c else None for o, c in zip(sum_obs, counts, strict=True)]
    return {
        "bin_edges": edges.tolist(),
        "mean_predicted": mean_pred,
        "observed_rate": observed,
        "count": counts.tolist(),
    }


# Metrics with a weighted form get fully vectorised bootstraps; any other callable is resampled in a loop.
_WEIGHTED: dict[Callable[..., Any], Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    auroc: _auroc_weighted,
    accuracy: _accuracy_weighted,
    brier: _brier_weighted,
}


def bootstrap_ci(
    fn: MetricFn, y: Any, s: Any, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of ``fn(y, s)`` over cases resampled with replacement.

    Returns None when the sample is empty or when fewer than half the replicates give a value
    (for AUROC: most resamples held a single class), since such an interval would mislead.
    """
    y_arr, s_arr = _labels(y), _scores(s)
    n = y_arr.size
    if n == 0 or n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    weighted = _WEIGHTED.get(fn)
    replicates: list[np.ndarray] = []
    if weighted is not None:
        chunk = max(1, _MAX_CELLS // n)
        for start in range(0, n_boot, chunk):
            rows = min(chunk, n_boot - start)
            idx = rng.integers(0, n, size=(rows, n))
            # Resampled indices become per-case counts (weights), one row per replicate.
            flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
            weights = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)
            replicates.append(weighted(y_arr, s_arr, weights))
    else:
        values = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, size=n)
            v = fn(y_arr[idx], s_arr[idx])
            values[b] = np.nan if v is None else v
        replicates.append(values)
    boot = np.concatenate(replicates)
    boot = boot[np.isfinite(boot)]
    if boot.size < max(2, n_boot // 2):
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return float(lo), float(hi)
