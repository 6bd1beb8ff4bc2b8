"""`dxassist train` on a handful of real images: the whole path runs, ONNX matches PyTorch.

This proves the training code works; it does not train a useful model (that takes the
full run documented in the model card).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training tests need the train extra (make test installs it)")

from dxassist.cli import main
from dxassist.cxr.runtime import CxrModel
from dxassist.imaging import load_file


def test_train_few_steps_exports_a_loadable_calibrated_model(
    shared_data: Path, tmp_path: Path, rg1_uncr: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"

    def train(*extra: str) -> int:
        manifest = str(shared_data / "cxr" / "manifest.csv")
        cache = str(tmp_path / "cache")
        args = ["--manifest", manifest, "--out", str(out), "--limit", "24", "--batch-size", "8"]
        return main(["train", *args, "--cache-dir", cache, *extra])

    code = train("--epochs", "1", "--balance-sources")
    assert code == 0, capsys.readouterr().err
    meta = json.loads((out / "dxassist-cxr-effnetlite0.json").read_text())
    assert meta["training"]["onnx_max_abs_diff"] <= 1e-4
    assert meta["training"]["train_images"] == 24 and meta["temperature"] > 0
    assert 0.0 <= meta["thresholds"]["priority"] <= meta["thresholds"]["urgent"] <= 1.0
    assert list((tmp_path / "cache").glob("train-*.npy"))
    model = CxrModel.load(out / "dxassist-cxr-effnetlite0.onnx")
    r = model.read(load_file(rg1_uncr))
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # resume continues from the checkpoint instead of starting again
    code = train("--epochs", "2", "--resume")
    assert code == 0
    meta2 = json.loads((out / "dxassist-cxr-effnetlite0.json").read_text())
    assert [h["epoch"] for h in meta2["training"]["history"]] == [1, 2]
    assert np.isfinite(meta2["temperature"])


def test_source_balance_weights_equalise_sources_within_each_label() -> None:
    import torch

    from dxassist.cxr.manifest import ManifestRow
    from dxassist.cxr.train import mixed_nll, source_balance_weights

    def row(label: str, dataset: str) -> ManifestRow:
        return ManifestRow(Path("x.png"), dataset, "p", label, "PA", "adult", "train")

    rows = [row("normal", "kermany")] * 6 + [row("normal", "nih")] * 2
    rows += [row("covid19", "covid-rdb")] * 3 + [row("pneumonia", "nih")] * 4
    w = source_balance_weights(rows)
    assert w[:6].sum() == pytest.approx(4.0) and w[6:8].sum() == pytest.approx(4.0)
    assert w[8:11] == pytest.approx([1.0] * 3) and w[11:] == pytest.approx([1.0] * 4)

    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    targets = torch.tensor([0, 0])
    plain = mixed_nll(logits, targets)
    only_second = mixed_nll(logits, targets, sample_weights=torch.tensor([0.0, 1.0]))
    assert only_second > plain  # the badly predicted row now carries all the weight
    nll_second = -torch.log_softmax(logits[1], 0)[0]
    assert only_second.item() == pytest.approx(nll_second.item(), rel=1e-6)
