"""Preprocessing, metrics and triage on real images and hand-checkable numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dxassist.cxr.metrics import roc_auc, threshold_for_sensitivity, threshold_for_specificity
from dxassist.cxr.preprocess import INPUT_SIZE, normalise_contrast, preprocess, resize
from dxassist.cxr.triage import Priority, Thresholds, priority_for
from dxassist.imaging import load_file


def test_preprocess_real_cr_shape_range_and_orientation(rg1_uncr: Path) -> None:
    rg = load_file(rg1_uncr)
    x = preprocess(rg.pixels)
    assert x.shape == (1, INPUT_SIZE, INPUT_SIZE)
    assert x.dtype == np.float32
    assert x.min() == pytest.approx(-1.0) and x.max() == pytest.approx(1.0)
    # bone bright: the mediastinum/spine column is brighter than the lung fields
    centre = x[0, 60:160, 100:124].mean()
    lungs = np.r_[x[0, 60:160, 40:70].ravel(), x[0, 60:160, 154:184].ravel()].mean()
    assert centre > lungs + 0.2


def test_preprocess_is_invariant_to_linear_windowing(rg1_uncr: Path) -> None:
    px = load_file(rg1_uncr).pixels
    a = preprocess(px)
    b = preprocess(0.25 + 0.5 * px)  # same film, flatter window
    assert np.abs(a - b).max() < 1e-3


def test_resize_squashes_without_keeping_aspect() -> None:
    img = np.zeros((100, 300), dtype=np.float32)
    img[:, 150:] = 1.0
    out = resize(img, 50)
    assert out.shape == (50, 50)
    assert out[:, :20].max() == 0.0 and out[:, 30:].min() == 1.0


def test_normalise_contrast_of_flat_image_is_zero() -> None:
    assert not normalise_contrast(np.full((10, 10), 0.7, np.float32)).any()


def test_preprocess_rejects_3d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        preprocess(np.zeros((4, 4, 3), np.float32))


def test_roc_auc_matches_hand_computation() -> None:
    # positives 0.8, 0.4; negatives 0.5, 0.1 → pairs won: (0.8>0.5),(0.8>0.1),(0.4>0.1) = 3/4
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.3, 0.3]) == pytest.approx(0.5)  # tie counts half
    assert np.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_operating_point_thresholds() -> None:
    y = np.array([1] * 20 + [0] * 20)
    s = np.r_[np.linspace(0.5, 1.0, 20), np.linspace(0.0, 0.6, 20)]
    t_sens = threshold_for_sensitivity(y, s, 0.95)
    assert (s[y == 1] >= t_sens).mean() >= 0.95
    t_spec = threshold_for_specificity(y, s, 0.95)
    assert (s[y == 0] < t_spec).mean() >= 0.95


def test_priority_mapping_and_threshold_validation() -> None:
    th = Thresholds(priority=0.3, urgent=0.8)
    assert priority_for(0.9, th) is Priority.URGENT
    assert priority_for(0.8, th) is Priority.URGENT
    assert priority_for(0.5, th) is Priority.PRIORITY
    assert priority_for(0.1, th) is Priority.ROUTINE
    with pytest.raises(ValueError, match="priority"):
        Thresholds(priority=0.9, urgent=0.5)
