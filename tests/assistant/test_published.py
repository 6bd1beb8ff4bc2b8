"""The published numbers next to ours: each carries its source, and the shipped cards and
eval JSON show the current list (``dxassist assist cards`` re-renders them)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from dxassist.assistant.card import card
from dxassist.assistant.data import DATASETS
from dxassist.assistant.engine import assist_models_dir
from dxassist.assistant.evaluate import PUBLISHED, table
from dxassist.assistant.model import SymptomModel
from dxassist.cli import main

PINNED = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} ")  # owner/repo@commit path
ARXIV = re.compile(r"arXiv:\d{4}\.\d{5}v\d")


def test_every_dataset_has_published_entries() -> None:
    assert set(PUBLISHED) == set(DATASETS)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_verified_numbers_cite_a_pinned_source(name: str) -> None:
    for p in PUBLISHED[name]:
        if p.verified:
            assert p.top1 is not None and 0.0 < p.top1 <= 1.0, p
            assert p.turns is None or 0.0 < p.turns <= 30.0, p
            assert PINNED.search(p.source) or ARXIV.search(p.source), p
        else:
            # an unverified number must say why it is not verified
            assert re.search(r"recalled|not checked|not retrieved", p.source), p


def test_unverified_rows_are_starred_in_the_table() -> None:
    result = json.loads(
        (assist_models_dir() / "dxassist-assist-ddxplus.eval.json").read_text(encoding="utf-8")
    )
    text = table(result)
    for p in PUBLISHED["ddxplus"]:
        row = next(line for line in text.splitlines() if line.startswith(p.method))
        assert row.split()[len(p.method.split())] == "*", row


@pytest.mark.parametrize("name", list(DATASETS))
def test_shipped_cards_show_current_published_numbers(name: str) -> None:
    folder = assist_models_dir()
    model = SymptomModel.load(folder, f"dxassist-assist-{name}")
    result = json.loads((folder / f"{model.name}.eval.json").read_text(encoding="utf-8"))
    assert result["published"] == [p.__dict__ for p in PUBLISHED[name]], (
        "published numbers changed: run `dxassist assist cards --dataset all`"
    )
    assert (folder / f"{model.name}.md").read_text(encoding="utf-8") == card(model, result)


def _copy_model(name: str, dest: Path) -> str:
    stem = f"dxassist-assist-{name}"
    for ext in (".npz", ".json", ".eval.json", ".md"):
        shutil.copy(assist_models_dir() / f"{stem}{ext}", dest / f"{stem}{ext}")
    return stem


def test_cards_command_rerenders_without_retraining(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stem = _copy_model("mz4", tmp_path)
    ev = tmp_path / f"{stem}.eval.json"
    stale = json.loads(ev.read_text(encoding="utf-8"))
    measured = {k: v for k, v in stale.items() if k != "published"}
    stale["published"] = []
    ev.write_text(json.dumps(stale), encoding="utf-8")
    (tmp_path / f"{stem}.md").write_text("stale card\n", encoding="utf-8")

    code = main(["assist", "cards", "--dataset", "mz4", "--dir", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 0, err
    fresh = json.loads(ev.read_text(encoding="utf-8"))
    assert {k: v for k, v in fresh.items() if k != "published"} == measured
    assert fresh["published"] == [p.__dict__ for p in PUBLISHED["mz4"]]
    md = (tmp_path / f"{stem}.md").read_text(encoding="utf-8")
    assert md == card(SymptomModel.load(tmp_path, stem), fresh)
    assert "Diaformer (CoD re-run, <=5 turns)" in md and "arXiv:2407.13301v2" in md


def test_cards_command_without_evaluation_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stem = _copy_model("dxy", tmp_path)
    (tmp_path / f"{stem}.eval.json").unlink()
    code = main(["assist", "cards", "--dataset", "dxy", "--dir", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 4
    assert "eval.json is missing" in err and "assist train --dataset dxy" in err
    assert "Traceback" not in err
