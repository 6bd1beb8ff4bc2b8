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


def roc_curve(
    y_true: npt.ArrayLike, score: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos]


def reliability_bins(
    correct: npt.ArrayLike, confidence: npt.ArrayLike, bins: int = 10
) -> list[dict[str, float]]:
    """Per equal-width confidence bin: count, mean confidence, observed accuracy."""
    c = np.asarray(correct, dtype=bool)
    p = np.asarray(confidence, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        out.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(m.sum()),
                "confidence": float(p[m].mean()) if m.any() else float("nan"),
                "accuracy": float(c[m].mean()) if m.any() else float("nan"),
            }
        )
    return out
