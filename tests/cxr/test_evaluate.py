"""`dxassist evaluate` on a small real manifest: report folder, CIs, confusion, curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dxassist.cli import main
from dxassist.cxr.metrics import roc_auc, roc_curve

pytest.importorskip("matplotlib", reason="plots need the train extra (make test installs it)")


def small_manifest(shared_data: Path, tmp_path: Path) -> Path:
    """Eight Kermany and six NIH test films, copied row for row from the real manifest."""
    src = shared_data / "cxr" / "manifest.csv"
    with src.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    pick = [r for r in rows if r["dataset"] == "kermany" and r["label"] == "normal"][:3]
    pick += [r for r in rows if r["dataset"] == "kermany" and r["label"] == "bacterial_pneumonia"][
        :3
    ]
    pick += [r for r in rows if r["dataset"] == "kermany" and r["label"] == "viral_pneumonia"][:2]
    pick += [r for r in rows if r["dataset"] == "nih" and r["label"] == "normal"][:3]
    pick += [r for r in rows if r["dataset"] == "nih" and r["label"] == "pneumonia"][:3]
    out = tmp_path / "manifest.csv"
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(pick)
    return out


def test_evaluate_writes_a_consistent_report(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = small_manifest(shared_data, tmp_path)
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--manifest",
            str(manifest),
            "--image-root",
            str(shared_data / "cxr"),
            "--out",
            str(out),
            "--n-boot",
            "200",
        ]
    )
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "| kermany | 8 |" in printed and "| nih | 6 |" in printed

    def no_nan(constant: str) -> None:
        pytest.fail(f"report.json holds {constant}, which strict JSON parsers reject")

    report = json.loads((out / "report.json").read_text(), parse_constant=no_nan)
    blocks = report["by_dataset"]
    assert blocks["pooled"]["images"] == 14 and blocks["kermany"]["labels"]["normal"] == 3
    # confusion rows add up to the films of each label
    assert sum(blocks["kermany"]["confusion"]["bacterial_pneumonia"]) == 3
    assert sum(blocks["nih"]["confusion"]["pneumonia"]) == 3
    # the reported AUC is the AUC of the saved predictions, and its CI brackets it
    preds = [p for p in report["predictions"] if p["dataset"] == "kermany"]
    y = np.array([p["label"] != "normal" for p in preds])
    auc = roc_auc(y, [1.0 - p["normal"] for p in preds])
    m = blocks["kermany"]["metrics"]["auc_abnormal"]
    assert m["value"] == pytest.approx(auc)
    assert m["ci_low"] <= m["value"] <= m["ci_high"]
    roc = blocks["kermany"]["curves"]["roc"]["abnormal"]
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and roc["fpr"][-1] == 1.0
    for name in ("roc_abnormal.png", "roc_findings.png", "reliability.png"):
        with Image.open(out / name) as img:
            assert img.size[0] > 300 and img.size[1] > 300
    summary = (out / "summary.md").read_text()
    assert "Kermany anchor" in summary and "0.968" in summary
    with (out / "predictions.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 14


def test_roc_curve_matches_hand_computation() -> None:
    fpr, tpr = roc_curve([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    # trapezoid area under the curve equals the rank AUC
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]))
