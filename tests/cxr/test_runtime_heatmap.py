"""The shipped ONNX model: outputs consistent with each other, heatmaps where the CAM is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dxassist.cxr.heatmap import normalised_cam, overlay
from dxassist.cxr.preprocess import preprocess
from dxassist.cxr.runtime import CxrModel
from dxassist.cxr.taxonomy import FINDINGS
from dxassist.errors import ModelError
from dxassist.imaging import load_file


@pytest.fixture(scope="module")
def model() -> CxrModel:
    return CxrModel.load()


def test_shipped_model_outputs_are_consistent(
    model: CxrModel, rg1_uncr: Path, shared_data: Path
) -> None:
    nih = sorted((shared_data / "cxr" / "nih").glob("*.png"))[0]
    x = np.stack([preprocess(load_file(p).pixels) for p in (rg1_uncr, nih)])
    probs, logits, cam, feats = model.session.run(None, {"image": x})
    assert probs.shape == (2, len(FINDINGS)) and cam.shape[:2] == (2, len(FINDINGS))
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    # calibrated probabilities are the softmax of logits / T, T from the model metadata
    z = logits / model.info.temperature
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.allclose(probs, expected, atol=1e-5)
    # the CAM is the classifier applied at each position: its spatial mean plus the bias
    # gives the logits, the same bias for every image
    bias = logits - cam.mean(axis=(2, 3))
    assert np.allclose(bias[0], bias[1], atol=1e-4)
    assert feats.shape[2:] == cam.shape[2:]


def test_read_returns_triage_consistent_with_thresholds(model: CxrModel, rg1_uncr: Path) -> None:
    r = model.read(load_file(rg1_uncr))
    th = model.info.thresholds
    expected = (
        "urgent"
        if r.abnormal >= th.urgent
        else ("priority" if r.abnormal >= th.priority else "routine")
    )
    assert str(r.priority) == expected
    assert r.heatmap_finding != "normal"
    assert r.top_finding == max(r.probabilities, key=r.probabilities.__getitem__)


def test_overlay_is_hot_where_the_cam_is() -> None:
    pixels = np.full((400, 300), 0.5, np.float32)
    cam = np.zeros((7, 7), np.float32)
    cam[1, 1] = 5.0  # upper-left hot spot
    cam[5, 5] = -5.0  # negative evidence is not shown
    img = np.asarray(overlay(pixels, cam)).astype(int)
    assert img.shape == (400, 300, 3)
    hot = img[400 * 1 // 7 + 20, 300 * 1 // 7 + 20]
    cold = img[400 * 5 // 7 + 20, 300 * 5 // 7 + 20]
    assert hot[0] > hot[2] + 60  # red-ish
    assert abs(cold[0] - 127) <= 2 and abs(cold[2] - 127) <= 2  # untouched grey
    heat = normalised_cam(cam, 70, 70)
    assert heat.max() == pytest.approx(1.0) and heat.min() == 0.0


def test_model_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXASSIST_MODELS_DIR", str(tmp_path))
    monkeypatch.delenv("DXASSIST_CXR_MODEL", raising=False)
    with pytest.raises(ModelError, match="not found"):
        CxrModel.load()
    shipped = Path(__file__).resolve().parents[2] / "models"
    name = "dxassist-cxr-effnetlite0"
    (tmp_path / f"{name}.onnx").write_bytes(b"this is not an onnx file")
    shutil.copy(shipped / f"{name}.json", tmp_path / f"{name}.json")
    with pytest.raises(ModelError, match="cannot load model"):
        CxrModel.load()
    shutil.copy(shipped / f"{name}.onnx", tmp_path / f"{name}.onnx")
    meta = json.loads((shipped / f"{name}.json").read_text())
    meta["findings"] = ["normal", "abnormal"]
    (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="expects"):
        CxrModel.load()
    del meta["thresholds"]
    (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="malformed"):
        CxrModel.load()
