"""`dxassist prognosis predict`: --lab, --csv, --json, and exit codes for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dxassist.cli import main
from dxassist.prognosis.runtime import PrognosisModel

LABS = ["--lab", "LDH=412", "--lab", "hsCRP=56", "--lab", "lymphocyte_pct=9.5"]


def test_predict_human(capsys: pytest.CaptureFixture[str], prognosis_model: PrognosisModel) -> None:
    assert main(["prognosis", "predict", *LABS]) == 0
    out = capsys.readouterr().out
    expected = prognosis_model.predict({"LDH": 412, "hsCRP": 56, "lymphocyte_pct": 9.5})
    assert f"{expected.risk:6.1%}" in out
    assert f"band {expected.band.upper()}" in out
    for reason in expected.reasons:
        assert reason in out
    assert "warnings        none" in out
    assert "Research use only" in out


def test_predict_json(capsys: pytest.CaptureFixture[str], prognosis_model: PrognosisModel) -> None:
    assert main(["prognosis", "predict", *LABS[:4], "--id", "bed 7", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj == prognosis_model.predict({"LDH": 412, "hsCRP": 56}, id="bed 7").to_json()
    assert obj["id"] == "bed 7"
    assert any(w.startswith("lymphocyte_pct not given") for w in obj["warnings"])


def test_predict_csv_echoes_ids_and_keeps_going_after_a_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prognosis_model: PrognosisModel
) -> None:
    sheet = tmp_path / "labs.csv"
    sheet.write_text(
        "id,LDH,hsCRP,lymphocyte_pct\nA-1,412,56,9.5\nB-2,180,,31\nC-3,250,12,140\nD-4,900,150,4\n"
    )
    assert main(["prognosis", "predict", "--csv", str(sheet), "--json"]) == 3
    captured = capsys.readouterr()
    objs = [json.loads(line) for line in captured.out.splitlines()]
    assert [o["id"] for o in objs] == ["A-1", "B-2", "C-3", "D-4"]
    assert (
        objs[0]
        == prognosis_model.predict(
            {"LDH": "412", "hsCRP": "56", "lymphocyte_pct": "9.5"}, id="A-1"
        ).to_json()
    )
    assert any(w.startswith("hsCRP not given") for w in objs[1]["warnings"])
    assert "cannot exceed 100" in objs[2]["error"] and "risk" not in objs[2]
    assert objs[3]["band"] == "high"
    assert "line 4 (id C-3): lymphocyte_pct" in captured.err


def test_predict_csv_human_without_id_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = tmp_path / "labs.csv"
    sheet.write_text("ldh,hs-crp\n300,20\n")
    assert main(["prognosis", "predict", "--csv", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "risk of death" in out and "lymphocyte_pct not given" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--lab", "LDH412"], 2, "write NAME=VALUE"),
        (["--lab", "LDH=1", "--lab", "LDH=2"], 2, "given twice"),
        ([], 2, "give --lab KEY=VALUE (one or more"),
        (["--lab", "LDH=-3"], 3, "negative"),
        (["--lab", "lymphocyte_pct=101"], 3, "cannot exceed 100"),
        (["--lab", "LDH=40000"], 3, "no plausible serum LDH"),
        (["--lab", "ferritin=400"], 3, "unknown lab 'ferritin'"),
        (["--lab", "LDH=abc"], 3, "not a number"),
        (["--lab", "LDH="], 3, "no lab value given"),
    ],
)
def test_bad_input_exit_codes(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prognosis", "predict", *argv]) == code
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"id,LDH,ferritin\n1,300,20\n", "column 'ferritin'"),
        (b"id,LDH\n", "no patient rows"),
        (b"LDH\n300,4\n", "more cells than the header"),
        (b"LDH\n\xff\xfe300\n", "not UTF-8"),
    ],
)
def test_bad_csv_files(
    tmp_path: Path, content: bytes | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = tmp_path / "labs.csv"
    if content is not None:
        sheet.write_bytes(content)
    assert main(["prognosis", "predict", "--csv", str(sheet)]) == 3
    assert message in capsys.readouterr().err


def test_csv_and_lab_together_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prognosis", "predict", "--csv", str(tmp_path), *LABS]) == 2
    assert "not both" in capsys.readouterr().err


def test_id_with_csv_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "labs.csv"
    sheet.write_text("LDH\n300\n")
    assert main(["prognosis", "predict", "--csv", str(sheet), "--id", "x"]) == 2
    assert "'id' column" in capsys.readouterr().err


def test_missing_model_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prognosis", "predict", *LABS, "--model", str(tmp_path / "x.json")])
    assert code == 4
    assert "not found" in capsys.readouterr().err


def test_no_labs_and_no_csv_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prognosis", "predict"]) == 2
    err = capsys.readouterr().err
    assert "give --lab KEY=VALUE (one or more" in err and "or --csv FILE" in err
    assert "not both" not in err


def test_crp_is_read_as_hscrp_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["prognosis", "predict", "--lab", "ldh=412", "--lab", "CRP=5", "--json"]
    assert main(argv) == 0
    obj = json.loads(capsys.readouterr().out)
    assert any("'CRP' was read as hs-CRP" in w and "mg/L" in w for w in obj["warnings"])
    assert main(["prognosis", "predict", "--lab", "ldh=412", "--lab", "hsCRP=5", "--json"]) == 0
    assert not any("read as" in w for w in json.loads(capsys.readouterr().out)["warnings"])


def test_a_lab_not_given_is_a_warning_not_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prognosis", "predict", "--lab", "LDH=412", "--lab", "hsCRP=56"]) == 0
    out = capsys.readouterr().out
    reasons = out.split("reasons", 1)[1].split("warnings", 1)[0]
    assert "lymphocyte_pct" not in reasons and "median" not in reasons
    assert "lymphocyte_pct not given: scored as the training median" in out
