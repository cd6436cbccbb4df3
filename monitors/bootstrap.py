"""Percentile bootstrap confidence intervals for the performance and calibration metrics.

Resampling n cases with replacement gives each case a multinomial count. Every metric here
(AUROC, average precision, accuracy, Brier, ECE, calibration slope and intercept) depends on
the cases only through how many positives and negatives share each score, so a replicate can
be drawn directly as multinomial counts over score *cells* (tie level x outcome class): the
same distribution as resampling cases, at a cost that no longer grows with the number of cases.

When there are more distinct scores than ``max_groups`` (continuous scores over a large trial),
neighbouring tie levels are pooled into ``max_groups`` groups of about equal size, never across
the decision threshold or a calibration bin edge, so accuracy and ECE keep their exact form.
The replicates then describe the pooled statistic; its variation around its own point value is
added to the exact point value. With a few thousand groups the pooled and exact statistics
differ by far less than the width of the interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitors import calibration, stats

MetricFn = Callable[[np.ndarray, np.ndarray], float | None]

MAX_GROUPS = 1024
FINAL_GROUPS = 65536
LEVEL = 0.95


@dataclass(frozen=True)
class Cells:
    """Per-group sums over cases sorted by score; groups ascend in score."""

    n_pos: np.ndarray
    n_neg: np.ndarray
    s_pos: np.ndarray  # sum of scores of the positives in the group
    s_neg: np.ndarray
    x_pos: np.ndarray  # mean logit(score) of the positives in the group (0 where none)
    x_neg: np.ndarray
    predicted: np.ndarray  # whether the group's scores are at or above the decision threshold
    ece_bin: np.ndarray


def _group_starts(
    values: np.ndarray, sizes: np.ndarray, threshold: float, max_groups: int | None
) -> np.ndarray:
    """First level of each group: whole levels, about equal numbers of cases, fixed boundaries kept."""
    # Boundaries that keep accuracy and ECE exact: the threshold and every calibration bin edge
    # (bins are closed on the right, so a bin starts at the first value above its lower edge).
    forced = np.r_[
        np.searchsorted(values, threshold, side="left"),
        np.searchsorted(values, calibration.INNER_EDGES, side="right"),
    ]
    if max_groups is None or values.size <= max_groups:
        starts = np.arange(values.size)
    else:
        first_case = np.cumsum(sizes) - sizes
        targets = np.arange(max_groups) * (sizes.sum() / max_groups)
        starts = np.minimum(np.searchsorted(first_case, targets), values.size - 1)
    starts = np.sort(np.concatenate([[0], starts, forced]))
    starts = starts[stats.level_starts(starts)]
    return starts[starts < values.size]


def build_cells(
    values: np.ndarray,
    n_pos: np.ndarray,
    n_neg: np.ndarray,
    threshold: float = 0.5,
    max_groups: int | None = MAX_GROUPS,
) -> Cells:
    """Group sums from distinct scores and their class counts; ``max_groups=None`` keeps every level."""
    if values.size == 0:
        empty = np.zeros(0)
        return Cells(empty, empty, empty, empty, empty, empty, empty.astype(bool), empty.astype(np.int64))
    starts = _group_starts(values, n_pos + n_neg, threshold, max_groups)
    x = calibration.logit(values)

    def total(v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v, starts)

    g_pos, g_neg = total(n_pos), total(n_neg)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_pos = np.where(g_pos > 0, total(x * n_pos) / g_pos, 0.0)
        x_neg = np.where(g_neg > 0, total(x * n_neg) / g_neg, 0.0)
    return Cells(
        n_pos=g_pos,
        n_neg=g_neg,
        s_pos=total(values * n_pos),
        s_neg=total(values * n_neg),
        x_pos=x_pos,
        x_neg=x_neg,
        predicted=values[starts] >= threshold,
        ece_bin=calibration.bin_index(values[starts]),
    )


def fit_calibration(
    cells: Cells, start: tuple[float, float, float] = (0.0, 1.0, 0.0)
) -> tuple[float, float, float]:
    """``(a, slope, intercept)`` of the recalibration fits over the cells' observed counts.

    NaN where a fit does not converge. Exact over cells of single tie levels; over pooled cells
    it is a close approximation, and a good starting point for the exact fit.
    """
    weight = np.r_[cells.n_pos, cells.n_neg]
    keep = weight > 0
    x = np.r_[cells.x_pos, cells.x_neg][keep]
    y = np.r_[np.ones_like(cells.x_pos), np.zeros_like(cells.x_neg)][keep]
    w = weight[keep][None, :]
    a, b = calibration.fit_recalibration(x, y, w, start=(start[0], start[1]))
    c = calibration.fit_intercept(x, y, w, start=start[2])
    return float(a[0]), float(b[0]), float(c[0])


def metrics_from_counts(
    cells: Cells, c_pos: np.ndarray, c_neg: np.ndarray, start: tuple[float, float, float] = (0.0, 1.0, 0.0)
) -> dict[str, np.ndarray]:
    """Every metric for each row of counts (rows x groups); NaN where a row cannot give one."""
    total_pos, total_neg = c_pos.sum(axis=1), c_neg.sum(axis=1)
    total = total_pos + total_neg
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_below = np.cumsum(c_neg, axis=1) - c_neg
        auroc = (c_pos * (neg_below + 0.5 * c_neg)).sum(axis=1) / (total_pos * total_neg)
        tp, fp = np.cumsum(c_pos[:, ::-1], axis=1), np.cumsum(c_neg[:, ::-1], axis=1)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        auprc = (c_pos[:, ::-1] * precision).sum(axis=1) / total_pos
        pred = cells.predicted.astype(float)
        accuracy = (c_pos * pred + c_neg * (1.0 - pred)).sum(axis=1) / total
        mean_s_pos = np.where(cells.n_pos > 0, cells.s_pos / cells.n_pos, 0.0)
        mean_s_neg = np.where(cells.n_neg > 0, cells.s_neg / cells.n_neg, 0.0)
        # Within a group every positive has about the group's mean score (exactly, for one tie level).
        sq = c_pos * (1.0 - mean_s_pos) ** 2 + c_neg * mean_s_neg**2
        brier = sq.sum(axis=1) / total
        gap = c_pos * mean_s_pos + c_neg * mean_s_neg - c_pos
        n_bins = calibration.ECE_BINS
        by_bin = np.stack([gap[:, cells.ece_bin == b].sum(axis=1) for b in range(n_bins)], axis=1)
        ece = np.abs(by_bin).sum(axis=1) / total
    x = np.r_[cells.x_pos, cells.x_neg]
    y = np.r_[np.ones_like(cells.x_pos), np.zeros_like(cells.x_neg)]
    w = np.concatenate([c_pos, c_neg], axis=1)
    a, slope = calibration.fit_recalibration(x, y, w, start=(start[0], start[1]))
    intercept = calibration.fit_intercept(x, y, w, start=start[2])
    return {
        "auroc": auroc,
        "auprc": auprc,
        "accuracy": accuracy,
        "brier": brier,
        "ece": ece,
        "slope": slope,
        "intercept": intercept,
        "recalibration_intercept": a,
    }


def bootstrap_intervals(
    cells: Cells,
    point: dict[str, float | None],
    n_boot: int = 200,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals for each metric named in ``point`` (keys as in :func:`metrics_from_counts`).

    ``cells`` come from :func:`build_cells`; ``point`` holds the exact point values. A metric whose
    point value is None, or for which fewer than half the replicates give a value, gets no
    interval, since it would mislead.
    """
    counts = np.r_[cells.n_pos, cells.n_neg]
    n = int(round(counts.sum()))
    if n == 0 or n_boot <= 0:
        return {}
    draws = np.random.default_rng(seed).multinomial(n, counts / counts.sum(), size=n_boot).astype(float)
    groups = cells.n_pos.size
    observed = metrics_from_counts(cells, cells.n_pos[None, :], cells.n_neg[None, :])
    fitted = (observed["recalibration_intercept"][0], observed["slope"][0], observed["intercept"][0])
    # Replicates lie close to the observed fit: starting there saves most Newton steps.
    start = fitted if np.isfinite(fitted).all() else (0.0, 1.0, 0.0)
    replicates = metrics_from_counts(cells, draws[:, :groups], draws[:, groups:], start)
    tail = (1.0 - level) / 2.0 * 100.0
    out: dict[str, tuple[float, float]] = {}
    for name, exact in point.items():
        if exact is None or name not in replicates:
            continue
        values = replicates[name][np.isfinite(replicates[name])]
        if values.size < max(2, n_boot // 2) or not np.isfinite(observed[name][0]):
            continue
        # Zero when groups are single tie levels; otherwise the pooling's small offset is removed.
        shifted = values + (exact - observed[name][0])
        lo, hi = np.percentile(shifted, [tail, 100.0 - tail])
        out[name] = (float(lo), float(hi))
    return out


def bootstrap_ci(
    fn: MetricFn, y: Any, s: Any, n_boot: int = 200, seed: int = 0, level: float = LEVEL
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of any ``fn(y, s)``, resampling cases in a loop.

    The general (slow) form, for metrics without a cell form and as a reference in tests.
    Returns None when the sample is empty or fewer than half the replicates give a value.
    """
    y_arr, s_arr = stats.labels(y), stats.scores(s)
    n = y_arr.size
    if n == 0 or n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        v = fn(y_arr[idx], s_arr[idx])
        values[b] = np.nan if v is None else v
    values = values[np.isfinite(values)]
    if values.size < max(2, n_boot // 2):
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)
