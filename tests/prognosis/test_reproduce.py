"""The card's numbers come from the commands it names: evaluate (the 110) and train."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dxassist.cli import main
from dxassist.prognosis.runtime import models_dir

CARD = models_dir() / "dxassist-prognosis-3lab.md"
MODEL = models_dir() / "dxassist-prognosis-3lab.json"


def test_evaluate_reproduces_the_card_tables(
    tongji: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the train extra")
    out = tmp_path / "eval"
    assert main(["prognosis", "evaluate", "--data", str(tongji), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    card = CARD.read_text(encoding="utf-8")
    table_lines = [line for line in (out / "table.md").read_text().splitlines() if line]
    assert len(table_lines) >= 18  # the side-by-side table and the bands table
    for line in table_lines:
        assert line in card, f"card differs from `dxassist prognosis evaluate`: {line}"
        assert line in printed
    report = json.loads((out / "report.json").read_text())
    assert report["patients"] == 110 and report["deaths"] == 13
    assert report["n_boot_used"] == report["n_boot"] == 2000
    met = report["goal"]["met"]
    assert ("not met" not in card.lower()) == met
    goal = next(line for line in printed.splitlines() if line.startswith("issue goal"))
    assert ("not reached" in goal) != met and goal.endswith("see the model card")
    assert f"AUC {report['point']['model_auc']:.3f}" in goal
    assert (out / "calibration.png").read_bytes().startswith(b"\x89PNG")
    with (out / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 110
    for band, counts in report["bands"].items():
        mine = [r for r in rows if r["band"] == band]
        assert len(mine) == counts["patients"]
        assert sum(int(r["died"]) for r in mine) == counts["deaths"]


def test_card_cv_table_is_the_models_record() -> None:
    meta = json.loads(MODEL.read_text())
    card = CARD.read_text(encoding="utf-8")
    cv = meta["training"]["cv_results"]
    for kind, m in cv.items():
        cells = (
            f"{m['auc']['mean']:.3f} ± {m['auc']['sd']:.3f} | "
            f"{m['brier']['mean']:.4f} ± {m['brier']['sd']:.4f} | "
            f"{m['log_loss']['mean']:.3f} ± {m['log_loss']['sd']:.3f} | "
            f"{m['calibration_error']['mean']:.3f} ± {m['calibration_error']['sd']:.3f} |"
        )
        assert cells in card, (kind, cells)
    b = meta["bands"]
    for value in (b["threshold"], b["intermediate"], b["high"]):
        assert f"{value:g}" in card
    assert f"{meta['name']} {meta['version']}" in card


def test_train_rebuilds_the_committed_model_byte_for_byte(tongji: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the train extra")
    out = tmp_path / "model.json"
    argv = ["prognosis", "train", "--data", str(tongji), "--model-version", "0.1.0"]
    assert main([*argv, "--out", str(out)]) == 0
    assert out.read_bytes() == MODEL.read_bytes()
