"""Per-class score summaries that monitors keep across batches.

Monitors report cumulative values after every batch; re-reading the whole trial on every update
would make monitoring cost grow with the square of its size. Two summaries suffice, and both
are canonical (however the cases were batched, they come out the same, so streamed and one-shot
results agree to the last bit):

- :class:`ClassScores`: the sorted scores of the positive and of the negative cases, with the
  Mann-Whitney count of correctly ordered (positive, negative) pairs kept up to date from each
  batch's own pairs (used per subgroup, where only AUROC and rates at a threshold are needed);
- :class:`ScoreLevels`: the distinct scores with the positives and negatives at each, what every
  discrimination and calibration metric of the whole trial needs.
"""

from __future__ import annotations

import numpy as np

from monitors import stats


def pairs2(pos_sorted: np.ndarray, neg_sorted: np.ndarray) -> int:
    """Twice the Mann-Whitney U of two samples: each ordered pair counts 2, each tie 1 (stays an integer)."""
    if pos_sorted.size == 0 or neg_sorted.size == 0:
        return 0
    below = np.searchsorted(neg_sorted, pos_sorted, side="left")
    not_above = np.searchsorted(neg_sorted, pos_sorted, side="right")
    return int(below.sum(dtype=np.int64) + not_above.sum(dtype=np.int64))


def _pairs2_new_negatives(pos_sorted: np.ndarray, new_neg: np.ndarray) -> int:
    # Counted from the side of the (few) new negatives, so the cost follows the batch, not the trial.
    if pos_sorted.size == 0 or new_neg.size == 0:
        return 0
    left = np.searchsorted(pos_sorted, new_neg, side="left")
    right = np.searchsorted(pos_sorted, new_neg, side="right")
    return int(2 * pos_sorted.size * new_neg.size - left.sum(dtype=np.int64) - right.sum(dtype=np.int64))


class ClassScores:
    """Sorted scores of positives (``pos``) and negatives (``neg``), and twice their U (``u2``)."""

    def __init__(self) -> None:
        self.pos = np.zeros(0)
        self.neg = np.zeros(0)
        self.u2 = 0

    @property
    def size(self) -> int:
        return int(self.pos.size + self.neg.size)

    def add(self, positive: np.ndarray, s: np.ndarray, presorted: bool = False) -> None:
        """Absorb a batch: ``positive`` labels (bool) and finite scores ``s`` (ascending if ``presorted``)."""
        new_pos, new_neg = s[positive], s[~positive]
        if not presorted:
            new_pos, new_neg = np.sort(new_pos), np.sort(new_neg)
        self.u2 += (
            pairs2(new_pos, self.neg) + _pairs2_new_negatives(self.pos, new_neg) + pairs2(new_pos, new_neg)
        )
        if new_pos.size:
            self.pos = np.sort(np.concatenate([self.pos, new_pos]))
        if new_neg.size:
            self.neg = np.sort(np.concatenate([self.neg, new_neg]))

    def auroc(self) -> float | None:
        pairs = self.pos.size * self.neg.size
        return self.u2 / (2.0 * pairs) if pairs else None


class ScoreLevels:
    """Distinct scores with the number of positives and negatives at each, merged batch by batch.

    Merging a batch costs one pass over the distinct scores.
    """

    def __init__(self) -> None:
        self.values = np.zeros(0)
        self.n_pos = np.zeros(0)
        self.n_neg = np.zeros(0)

    @property
    def size(self) -> int:
        return int(self.n_pos.sum() + self.n_neg.sum())

    def add(self, positive: np.ndarray, s: np.ndarray) -> None:
        """Absorb a batch: ``positive`` labels (bool) and finite scores ``s``."""
        batch = stats.levels(np.sort(s[positive]), np.sort(s[~positive]))
        self.values, self.n_pos, self.n_neg = stats.merge_levels((self.values, self.n_pos, self.n_neg), batch)
