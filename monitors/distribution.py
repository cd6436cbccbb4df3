"""Distribution shift between a reference sample and a trial sample: PSI and two-sample KS.

Both samples are held as counts (distinct values with their frequencies, or counts per bin),
which is what lets the drift monitor update cumulatively batch after batch at the cost of the
new batch only.

- **PSI** (population stability index): ``sum (t - r) * ln(t / r)`` over bins, with ``r`` and ``t``
  the reference and trial shares. Numeric features use 10 bins cut at the reference deciles
  (fewer when the reference has ties at the deciles); categorical features use one bin per
  category. A share of 0 is raised to ``PSI_EPSILON`` so that an empty bin gives a large,
  finite contribution instead of an infinite one. Convention: below 0.10 stable, 0.10-0.25 a
  moderate shift, above 0.25 a major shift.
- **KS**: the largest distance between the two empirical CDFs (as ``scipy.stats.ks_2samp``), and
  its asymptotic p-value from the Kolmogorov distribution (see :func:`ks_pvalue`).
"""

from __future__ import annotations

import math

import numpy as np

PSI_BINS = 10
PSI_EPSILON = 1e-4
PSI_MODERATE = 0.10
PSI_MAJOR = 0.25


def quantile_edges(reference: np.ndarray, n_bins: int = PSI_BINS) -> np.ndarray:
    """Interior bin edges at the reference's quantiles; bins are ``[e_i, e_i+1)``, outer ones open."""
    if reference.size == 0:
        return np.zeros(0)
    inner = np.quantile(reference, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.unique(inner)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the ``len(edges) + 1`` bins cut at ``edges``."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def bin_labels(edges: np.ndarray) -> list[str]:
    """Readable bins, to follow a feature name: ``< 21.6``, ``in [21.6, 23.1)``, ``>= 31``."""
    if edges.size == 0:
        return ["(all values)"]
    inner = [f"in [{lo:.4g}, {hi:.4g})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return [f"< {edges[0]:.4g}", *inner, f">= {edges[-1]:.4g}"]


def describe_shift(row: dict) -> str:
    """The largest-shifting bin of a drift table row in words."""
    if not row.get("largest_shift"):
        return "no trial values"
    ref, trial = row["largest_shift_reference_share"], row["largest_shift_trial_share"]
    return f"largest change at {row['largest_shift']}: {trial:.0%} of the trial vs {ref:.0%} of the reference"


def psi_terms(reference_counts: np.ndarray, trial_counts: np.ndarray) -> np.ndarray | None:
    """Each bin's contribution to the PSI; None when either sample is empty."""
    r_total, t_total = reference_counts.sum(), trial_counts.sum()
    if r_total == 0 or t_total == 0:
        return None
    r = np.maximum(reference_counts / r_total, PSI_EPSILON)
    t = np.maximum(trial_counts / t_total, PSI_EPSILON)
    return (t - r) * np.log(t / r)


def psi(reference_counts: np.ndarray, trial_counts: np.ndarray) -> float | None:
    terms = psi_terms(np.asarray(reference_counts, float), np.asarray(trial_counts, float))
    return None if terms is None else float(terms.sum())


def psi_status(value: float | None) -> str:
    if value is None:
        return "no evidence"
    if value >= PSI_MAJOR:
        return "major shift"
    return "moderate shift" if value >= PSI_MODERATE else "stable"


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (ascending) and how often each occurs."""
    ordered = np.sort(values)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else np.zeros(0, int)
    return ordered[starts], np.diff(np.r_[starts, ordered.size]).astype(np.int64)


def merge_counts(
    values: np.ndarray, counts: np.ndarray, more_values: np.ndarray, more_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Union of two (distinct ascending values, counts) summaries."""
    if values.size == 0:
        return more_values, more_counts
    both = np.r_[values, more_values]
    # Two sorted runs: the stable sort merges them in linear time.
    order = np.argsort(both, kind="stable")
    merged, merged_counts = both[order], np.r_[counts, more_counts][order]
    starts = np.flatnonzero(np.r_[True, merged[1:] != merged[:-1]])
    return merged[starts], np.add.reduceat(merged_counts, starts)


def ks_statistic(
    ref_values: np.ndarray, ref_counts: np.ndarray, trial_values: np.ndarray, trial_counts: np.ndarray
) -> float | None:
    """Largest vertical distance between the two empirical CDFs, from (value, count) summaries."""
    n, m = ref_counts.sum(), trial_counts.sum()
    if n == 0 or m == 0:
        return None
    both = np.r_[ref_values, trial_values]
    ref_steps = np.r_[ref_counts, np.zeros(trial_counts.size, dtype=ref_counts.dtype)]
    trial_steps = np.r_[np.zeros(ref_counts.size, dtype=trial_counts.dtype), trial_counts]
    order = np.argsort(both, kind="stable")
    both = both[order]
    # The CDFs are compared after every distinct value, once both samples' steps at it are taken;
    # integer running counts keep the CDFs exact (no drift from summing fractions).
    ends = np.r_[np.flatnonzero(both[1:] != both[:-1]), both.size - 1]
    ref_cdf = np.cumsum(ref_steps[order])[ends] / n
    trial_cdf = np.cumsum(trial_steps[order])[ends] / m
    return float(np.abs(ref_cdf - trial_cdf).max())


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the limit of sqrt(n) * D_n)."""
    if x <= 0:
        return 1.0
    if x < 1.0:
        # The alternating series converges slowly for small x; the Jacobi theta form does not.
        z = -(math.pi**2) / (8.0 * x * x)
        cdf = math.sqrt(2.0 * math.pi) / x * sum(math.exp((2 * k - 1) ** 2 * z) for k in range(1, 8))
        return max(0.0, 1.0 - cdf)
    total = sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic ``d`` over samples of n and m.

    Uses Stephens' finite-sample scaling ``(sqrt(en) + 0.12 + 0.11 / sqrt(en)) * d`` with
    ``en = n*m/(n+m)``, which tracks the exact distribution closely from a few dozen cases on.
    """
    root = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)
