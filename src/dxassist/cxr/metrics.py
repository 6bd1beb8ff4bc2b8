"""Classification metrics in plain numpy (no scikit-learn at runtime)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def roc_auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U with mid-ranks for ties).

    Returns NaN when only one class is present.
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # mid-ranks for ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(mid, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def threshold_for_sensitivity(
    y_true: npt.ArrayLike, score: npt.ArrayLike, sensitivity: float
) -> float:
    """Highest threshold t such that the share of positives with score ≥ t is ≥ target."""
    y = np.asarray(y_true, dtype=bool)
    pos = np.sort(np.asarray(score, dtype=np.float64)[y])
    if len(pos) == 0:
        raise ValueError("no positive cases to set a sensitivity operating point")
    k = int(np.floor((1.0 - sensitivity) * len(pos)))
    return float(pos[min(k, len(pos) - 1)])


def threshold_for_specificity(
    y_true: npt.ArrayLike, score: npt.ArrayLike, specificity: float
) -> float:
    """Lowest threshold t such that the share of negatives with score < t is ≥ target."""
    y = np.asarray(y_true, dtype=bool)
    neg = np.sort(np.asarray(score, dtype=np.float64)[~y])
    if len(neg) == 0:
        raise ValueError("no negative cases to set a specificity operating point")
    k = int(np.ceil(specificity * len(neg))) - 1
    return float(np.nextafter(neg[min(max(k, 0), len(neg) - 1)], np.inf))
