"""Calibration of risk scores: do predicted risks match observed rates?

Three views, as in the clinical prediction literature (Van Calster et al., 2019):

- **calibration slope**: the slope ``b`` of the logistic recalibration ``logit P(y=1) = a + b·logit(s)``.
  1 is ideal; below 1 the scores are too extreme (typical of overfitting), above 1 too modest.
- **calibration intercept** ("calibration-in-the-large"): ``a`` in ``logit P(y=1) = a + logit(s)``
  with the slope fixed at 1. 0 is ideal; positive means the model under-estimates risk overall,
  which is what a model fitted on a lower-risk population shows on a higher-risk one.
- **expected calibration error (ECE)** over 10 equal-width score bins, and the reliability curve.

The fits are Newton-Raphson (IRLS) on the logistic log-likelihood, written for a weight matrix
(replicates x cases) so that the same code fits the observed cases and every bootstrap replicate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Scores of exactly 0 or 1 have an infinite logit; clipping keeps such a model fittable (and its
# slope finite) while moving no realistic score.
SCORE_CLIP = 1e-7
ECE_BINS = 10
INNER_EDGES = np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1]
_MAX_ITER = 50
_TOL = 1e-10
# A fit whose last Newton step is still larger than this has not converged (separation, one class).
_ACCEPT = 1e-6


def logit(s: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(s, dtype=float), SCORE_CLIP, 1.0 - SCORE_CLIP)
    return np.log(p) - np.log1p(-p)


def _expit(eta: np.ndarray) -> np.ndarray:
    # |eta| beyond 700 overflows exp; the probabilities there are 0 or 1 to double precision anyway.
    return 1.0 / (1.0 + np.exp(-np.clip(eta, -700.0, 700.0)))


def _settled(step: np.ndarray) -> bool:
    # Rows that diverged (separable data in one bootstrap replicate) must not hold the others back.
    finite = np.isfinite(step)
    return not finite.any() or bool(np.all(step[finite] < _TOL))


def fit_recalibration(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, start: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Intercept and slope of ``logit P(y) = a + b·x`` per row of weights ``w`` (rows x cases).

    Returns two arrays (one value per row); NaN where the fit does not converge (separable data,
    one class only), so that a bootstrap can drop such replicates.
    """
    rows = w.shape[0]
    a, b = np.full(rows, start[0]), np.full(rows, start[1])
    step = np.full(rows, np.inf)
    for _ in range(_MAX_ITER):
        # Rows that diverged carry NaN through the arithmetic; they are reported as NaN below.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            p = _expit(a[:, None] + b[:, None] * x)
            r, v = w * (y - p), w * p * (1.0 - p)
            g0, g1 = r.sum(axis=1), (r * x).sum(axis=1)
            h00, h01, h11 = v.sum(axis=1), (v * x).sum(axis=1), (v * x * x).sum(axis=1)
            det = h00 * h11 - h01 * h01
            da = (h11 * g0 - h01 * g1) / det
            db = (h00 * g1 - h01 * g0) / det
            a, b = a + da, b + db
            step = np.maximum(np.abs(da), np.abs(db) / np.maximum(1.0, np.abs(b)))
        if _settled(step):
            break
    done = np.isfinite(a) & np.isfinite(b) & (step < _ACCEPT)
    return np.where(done, a, np.nan), np.where(done, b, np.nan)


def fit_intercept(x: np.ndarray, y: np.ndarray, w: np.ndarray, start: float = 0.0) -> np.ndarray:
    """Calibration-in-the-large: ``a`` in ``logit P(y) = a + x`` (slope fixed at 1), per row of ``w``."""
    a = np.full(w.shape[0], start)
    step = np.full(w.shape[0], np.inf)
    for _ in range(_MAX_ITER):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            p = _expit(a[:, None] + x)
            da = (w * (y - p)).sum(axis=1) / (w * p * (1.0 - p)).sum(axis=1)
            a = a + da
            step = np.abs(da)
        if _settled(step):
            break
    return np.where(np.isfinite(a) & (step < _ACCEPT), a, np.nan)


def bin_index(s: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Equal-width bin of each score, bins closed on the right as in scikit-learn's calibration_curve.

    Bin 0 is [0, 0.1], bin 1 is (0.1, 0.2], and so on: a score on an edge belongs to the lower bin.
    """
    inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner, s, side="left")


def ece(y: Any, s: Any, n_bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: case-weighted mean |mean score - observed rate| over equal-width bins."""
    y_arr, s_arr = np.asarray(y, dtype=float) > 0.5, np.asarray(s, dtype=float)
    if y_arr.size == 0:
        return None
    idx = bin_index(s_arr, n_bins)
    sum_pred = np.bincount(idx, weights=s_arr, minlength=n_bins)
    sum_obs = np.bincount(idx, weights=y_arr.astype(float), minlength=n_bins)
    return float(np.abs(sum_pred - sum_obs).sum() / y_arr.size)


def ece_from_levels(
    values: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, n_bins: int = ECE_BINS
) -> float | None:
    """ECE from distinct ascending scores and the class counts at each (see :mod:`monitors.stats`)."""
    total = float(n_pos.sum() + n_neg.sum())
    if total == 0:
        return None
    # Sorted scores: each bin is a contiguous run, cut where the scores pass a bin edge.
    inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    cuts = np.searchsorted(values, inner, side="right")
    starts = np.unique(np.r_[0, cuts[cuts < values.size]])
    gap = np.add.reduceat((n_pos + n_neg) * values - n_pos, starts)
    return float(np.abs(gap).sum() / total)


def calibration_bins(y: Any, s: Any, n_bins: int = ECE_BINS) -> dict[str, Any]:
    """Reliability diagram data over equal-width score bins; empty bins carry None.

    Column lists (``bin_edges``, ``mean_predicted``, ``observed_rate``, ``count``) for plotting
    libraries, and the same data as one row per non-empty bin under ``bins`` (``mean_predicted``,
    ``observed``, ``count``, ``lower``, ``upper``), the form the HTML report draws, and ``ece``.
    """
    y_arr, s_arr = np.asarray(y, dtype=float) > 0.5, np.asarray(s, dtype=float)
    ones = np.ones(s_arr.size)
    return calibration_bins_from_levels(s_arr, y_arr.astype(float), ones - y_arr, n_bins)


def calibration_bins_from_levels(
    values: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, n_bins: int = ECE_BINS
) -> dict[str, Any]:
    """:func:`calibration_bins` from distinct scores and the class counts at each."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = bin_index(values, n_bins) if values.size else np.zeros(0, dtype=np.int64)
    weight = n_pos + n_neg
    counts = np.rint(np.bincount(idx, weights=weight, minlength=n_bins)).astype(np.int64)
    sum_pred = np.bincount(idx, weights=weight * values, minlength=n_bins)
    sum_obs = np.bincount(idx, weights=n_pos, minlength=n_bins)
    mean_pred = [float(p / c) if c else None for p, c in zip(sum_pred, counts, strict=True)]
    observed = [float(o / c) if c else None for o, c in zip(sum_obs, counts, strict=True)]
    bins = [
        {
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "mean_predicted": mean_pred[i],
            "observed": observed[i],
            "count": int(counts[i]),
        }
        for i in range(n_bins)
        if counts[i]
    ]
    return {
        "bin_edges": edges.tolist(),
        "mean_predicted": mean_pred,
        "observed_rate": observed,
        "count": counts.tolist(),
        "bins": bins,
        "ece": ece_from_levels(values, n_pos, n_neg, n_bins),
    }
