"""``dxassist assist``: opinions, interactive mode, evaluate, and bad input."""

from __future__ import annotations

import io
import json

import pytest

from dxassist.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["assist", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_opinion_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--dataset", "mz10", "--symptom", "咳嗽=yes", "--text", "发烧两天，没有腹泻",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    op = json.loads(out)
    probs = [d["probability"] for d in op["differential"]]
    assert probs == sorted(probs, reverse=True) and len(probs) == 5
    assert 0.5 < sum(probs) <= 1.0 + 1e-6
    assert op["symptoms_used"] == {"发热": "yes", "腹泻": "no", "咳嗽": "yes"}
    assert [m["text"] for m in op["mappings"]] == ["发烧", "腹泻"]
    assert op["next_questions"] and "disclaimer" in op


def test_opinion_text_and_english_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--dataset", "dxy", "--symptom", "cough=yes", "--symptom", "fever=no"
    )
    assert code == 0
    assert "Differential (dxy" in out and "Next questions" in out


def test_red_flag_on_ddxplus(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--dataset", "ddxplus", "--text",
        "shortness of breath, chest pain at rest, sweating, coughing up blood", "--json",
    )  # fmt: skip
    assert code == 0
    op = json.loads(out)
    assert op["red_flags"], op["differential"]
    assert all("severity" in d for d in op["differential"])


def test_interactive_reads_answers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\nn\nbogus\nq\n"))
    code, out, _ = run(capsys, "--dataset", "mz4", "--symptom", "咳嗽=yes", "--interactive")
    assert code == 0
    assert out.count("? Does the patient have") >= 3
    assert "is not one of yes / no / unsure" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--dataset", "mz10", "--symptom", "咳嗽"], 2, "must be CODE=VALUE"),
        (["--dataset", "mz10", "--symptom", "咳嗽=perhaps"], 3, "is not one of yes / no"),
        (["--dataset", "mz10", "--symptom", "coughh=yes"], 3, "did you mean"),
        (["--dataset", "nope", "--symptom", "x=yes"], 3, "unknown dataset 'nope'"),
        (["--dataset", "mz10", "--text", "x" * 6000], 3, "at most 5000"),
        (["--dataset", "mz10", "--sex", "X"], 2, "use F or M"),
    ],
)
def test_bad_input(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, out, err = run(capsys, *argv)
    assert got == code
    assert message in err and "Traceback" not in err
    assert out == ""


def test_missing_model_is_exit_4(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DXASSIST_MODELS_DIR", str(tmp_path))
    code, _, err = run(capsys, "--dataset", "mz10", "--symptom", "咳嗽=yes")
    assert code == 4 and "dxassist assist train --dataset mz10" in err


def test_evaluate_prints_table(capsys: pytest.CaptureFixture[str], symptoms_root: None) -> None:
    code, out, _ = run(capsys, "evaluate", "--dataset", "dxy")
    assert code == 0
    assert "dxassist interactive (EIG questions)" in out
    assert "KR-DQN" in out and "104 cases" in out


def test_symptoms_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "symptoms", "--dataset", "gmd12")
    assert code == 0 and "咳嗽\t咳嗽 (cough)" in out
