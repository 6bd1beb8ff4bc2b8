"""`dxassist read` end to end on real radiographs and on every kind of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from dxassist.cli import EXIT_INPUT, EXIT_OK, main
from dxassist.cxr.taxonomy import FINDINGS

JSON_KEYS = {
    "file",
    "model",
    "probabilities",
    "abnormal",
    "priority",
    "heatmap",
    "warnings",
    "image",
}


def _caveats() -> set[str]:
    from dxassist.cxr.runtime import CxrModel

    return set(CxrModel.load().info.caveats.values())


def input_warnings(obj: dict) -> list[str]:
    """The warnings about the input, leaving out the model's standing caveats."""
    caveats = _caveats()
    return [w for w in obj["warnings"] if w not in caveats]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = main(["read", "--json", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def derived(src: Path, dst: Path, **changes: object) -> Path:
    ds = pydicom.dcmread(src)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(dst)
    return dst


def test_read_real_cr_human_output_and_heatmap(
    rg1_uncr: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["read", str(rg1_uncr), "--heatmap-dir", str(tmp_path / "maps")])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    for phrase in (
        "top finding",
        "abnormal score",
        "priority",
        "heatmap",
        "warnings",
        "Bacterial pneumonia",
        "COVID-19 pneumonia",
        "CR, PA, 1841x1955, MONOCHROME1",
    ):
        assert phrase in out
    heatmap = tmp_path / "maps" / "RG1_UNCR_heatmap.png"
    assert heatmap.is_file()
    img = np.asarray(Image.open(heatmap))
    assert img.ndim == 3 and img.shape[2] == 3 and max(img.shape[:2]) == 1024
    # the overlay is coloured somewhere (heatmap) and grey elsewhere (radiograph)
    spread = img.max(axis=2).astype(int) - img.min(axis=2).astype(int)
    assert (spread > 60).mean() > 0.01
    assert (spread < 5).mean() > 0.05


def test_read_json_schema_and_lossless_j2k_agrees(
    rg1_uncr: Path, rg1_j2kr: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, objs, _ = run_json(capsys, str(rg1_uncr), str(rg1_j2kr), "--heatmap-dir", str(tmp_path))
    assert code == EXIT_OK
    assert len(objs) == 2
    a, b = objs
    for o in objs:
        assert set(o) >= JSON_KEYS
        assert set(o["probabilities"]) == set(FINDINGS)
        assert sum(o["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert o["abnormal"] == pytest.approx(1.0 - o["probabilities"]["normal"], abs=1e-5)
        assert o["priority"] in {"urgent", "priority", "routine"}
        assert o["model"]["name"] and o["model"]["version"]
        assert o["image"] == {
            "modality": "CR",
            "view": "PA",
            "rows": 1955,
            "columns": 1841,
            "photometric": "MONOCHROME1",
        }
        assert Path(o["heatmap"]).is_file()
        assert input_warnings(o) == []
    for k in FINDINGS:  # JPEG 2000 lossless holds the same pixels
        assert a["probabilities"][k] == pytest.approx(b["probabilities"][k], abs=1e-5)


def test_read_png_and_jpeg_from_manifest(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cxr = shared_data / "cxr"
    nih = next(iter(sorted((cxr / "nih").glob("*.png"))))
    kermany = next(iter(sorted((cxr / "kermany").glob("*.jpeg"))))
    code, objs, _ = run_json(capsys, str(nih), str(kermany), "--no-heatmap")
    assert code == EXIT_OK
    assert [o["heatmap"] for o in objs] == [None, None]
    assert objs[0]["image"]["rows"] == 384
    # Kermany films are 224x224: flagged as small
    assert any("small image" in w for w in objs[1]["warnings"])


def test_warnings_lateral_age_burned_in(
    rg1_uncr: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lateral = derived(rg1_uncr, tmp_path / "lat.dcm", ViewPosition="LL")
    child = derived(rg1_uncr, tmp_path / "child.dcm", PatientAge="012Y")
    burned = derived(rg1_uncr, tmp_path / "burned.dcm", BurnedInAnnotation="YES")
    ds = pydicom.dcmread(rg1_uncr)
    del ds.ViewPosition
    ds.SeriesDescription = "THORAX LAT"
    described = tmp_path / "described.dcm"
    ds.save_as(described)
    ds.SeriesDescription = "THORAX PA"
    frontal = tmp_path / "frontal.dcm"
    ds.save_as(frontal)
    code, objs, _ = run_json(
        capsys,
        str(lateral),
        str(child),
        str(burned),
        str(described),
        str(frontal),
        "--no-heatmap",
    )
    assert code == EXIT_OK
    assert any("lateral view (ViewPosition LL)" in w for w in objs[0]["warnings"])
    assert any("lateral view (described as 'THORAX LAT')" in w for w in objs[3]["warnings"])
    assert input_warnings(objs[4]) == []
    assert any("age 12" in w and "outside" in w for w in objs[1]["warnings"])
    assert any("Burned In Annotation" in w for w in objs[2]["warnings"])


def _bad_inputs(rg1_uncr: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, phrase the error must contain)."""
    data = rg1_uncr.read_bytes()
    truncated = tmp / "truncated.dcm"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp / "notes.dcm"
    text.write_text("Patient doing well, chest clear.\n")
    empty = tmp / "empty.dcm"
    empty.write_bytes(b"")
    folder = tmp / "a_folder"
    folder.mkdir()
    ct = derived(rg1_uncr, tmp / "ct.dcm", Modality="CT", SOPClassUID=pydicom.uid.CTImageStorage)
    ds = pydicom.dcmread(rg1_uncr)
    del ds.PixelData
    nopix = tmp / "nopixels.dcm"
    ds.save_as(nopix)
    return {
        "truncated": (truncated, "truncated"),
        "text": (text, "not a DICOM, PNG or JPEG"),
        "empty": (empty, "empty"),
        "directory": (folder, "directory"),
        "ct": (ct, "CT"),
        "no pixel data": (nopix, "no pixel data"),
        "missing": (tmp / "does_not_exist.dcm", "not found"),
    }


def test_bad_inputs_each_get_one_line_and_others_still_read(
    rg1_uncr: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _bad_inputs(rg1_uncr, tmp_path)
    files = [str(p) for p, _ in cases.values()]
    code = main(["read", *files, str(rg1_uncr), "--no-heatmap"])
    out, err = capsys.readouterr()
    assert code == EXIT_INPUT
    lines = err.strip().splitlines()
    assert len(lines) == len(cases), err
    for (path, phrase), line in zip(cases.values(), lines, strict=True):
        assert line.startswith(f"dxassist: {path}: "), line
        assert phrase.lower() in line.lower(), (phrase, line)
        assert "Traceback" not in line
    # the good file after them is still read
    assert "top finding" in out and str(rg1_uncr) in out


def test_missing_decoder_is_reported(
    rg1_uncr: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Simulate a site without the JPEG 2000 plugin: pydicom then has no decoder for it.
    from pydicom.data import get_testdata_file

    j2k = Path(str(get_testdata_file("RG1_J2KR.dcm")))
    from pydicom.pixels.decoders import JPEG2000LosslessDecoder

    monkeypatch.setattr(JPEG2000LosslessDecoder, "_available", {}, raising=False)
    code, objs, err = run_json(capsys, str(j2k), "--no-heatmap")
    assert code == EXIT_INPUT
    assert objs[0]["file"] == str(j2k) and "error" in objs[0]
    assert "JPEG 2000" in err and "install" in err.lower()


def test_console_script_runs_in_a_subprocess(rg1_uncr: Path, tmp_path: Path) -> None:
    exe = shutil.which("dxassist", path=str(Path(sys.executable).parent))
    assert exe, "console script dxassist is not installed in this environment"
    text = tmp_path / "report.dcm"
    text.write_text("not an image")
    proc = subprocess.run(
        [exe, "read", "--json", str(rg1_uncr), str(text), "--heatmap-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == EXIT_INPUT
    assert "Traceback" not in proc.stderr
    objs = [json.loads(x) for x in proc.stdout.splitlines()]
    assert objs[0]["image"]["modality"] == "CR" and "error" in objs[1]
    assert proc.stderr.count("\n") == 1 and str(text) in proc.stderr


def test_model_caveat_is_shown_with_its_finding(
    rg1_uncr: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = Path(__file__).resolve().parents[1] / "models"
    name = "dxassist-cxr-effnetlite0"
    shutil.copy(shipped / f"{name}.onnx", tmp_path / f"{name}.onnx")
    meta = json.loads((shipped / f"{name}.json").read_text())
    meta["caveats"] = {k: f"caveat for {k}" for k in FINDINGS}
    (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    code, objs, _ = run_json(
        capsys, str(rg1_uncr), "--no-heatmap", "--model", str(tmp_path / f"{name}.onnx")
    )
    assert code == EXIT_OK
    assert objs[0]["warnings"] == [f"caveat for {objs[0]['top_finding']}"]


@pytest.mark.parametrize("command", [[], ["read"], ["demo"], ["train"], ["evaluate"]])
def test_help_pages_render(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    assert "usage: dxassist" in capsys.readouterr().out
