"""`dxassist read` against the files and command lines of careless users and odd systems.

The contract: a bad input gets exactly one line on stderr naming the file and the reason,
exit code 3, and the other files are still read; never a traceback, a NaN in the JSON, a
hang or a lost read. Exit code 2 for a bad command line, 4 for a broken model.

These tests exercise the command, not the network: they use a tiny stand-in ONNX model
(same inputs, outputs and metadata as the shipped one) built in ``tmp_path`` and passed
with ``--model``, so they pass whichever model is installed. Inputs are derived at test
time from RG1 (pydicom-data) and the shared NIH PNG.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pydicom
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import dxassist.pipeline as pipeline_module
from dxassist.cli import EXIT_BROKEN_PIPE, EXIT_INPUT, EXIT_MODEL, EXIT_OK, EXIT_USAGE, main
from dxassist.cxr.taxonomy import FINDINGS


def build_model(folder: Path, bias: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)) -> Path:
    """A tiny ONNX model with the shipped model's interface: image -> probabilities, cam."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 224, 224])
    probs = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 4])
    cam = helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", 4, 7, 7])
    nodes = [
        helper.make_node(
            "AveragePool", ["image"], ["pool"], kernel_shape=[32, 32], strides=[32, 32]
        ),
        helper.make_node("Concat", ["pool"] * 4, ["cam"], axis=1),
        helper.make_node("ReduceMean", ["cam"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("Add", ["mean", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    weights = [numpy_helper.from_array(np.array(bias, np.float32), "bias")]
    graph = helper.make_graph(nodes, "stand_in_cxr", [image], [probs, cam], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stand-in-cxr.onnx"
    onnx.save(model, path)
    meta = {
        "name": "stand-in-cxr",
        "version": "0",
        "findings": list(FINDINGS),
        "input": {"size": 224},
        "temperature": 1.0,
        "thresholds": {"priority": 0.5, "urgent": 0.9},
        "validated_age_years": [[18, 100]],
    }
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_model(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def nih_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import shared_data_dir

    found = sorted((shared_data_dir() / "cxr" / "nih").glob("*.png"))
    if not found:
        pytest.fail(f"no NIH PNG under {shared_data_dir()}; set DXASSIST_SHARED_DATA")
    return found[0]


def small_cr(rg1_uncr: Path, dst: Path, **values: Any) -> Path:
    """A 512 x 512 crop of RG1 with header values changed (possibly invalid ones)."""
    ds = pydicom.dcmread(rg1_uncr)
    ds.set_pixel_data(ds.pixel_array[600:1112, 500:1012].copy(), "MONOCHROME1", 15)
    with warnings.catch_warnings():  # pydicom warns about the invalid values
        warnings.simplefilter("ignore")
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    ds.save_as(dst)
    return dst


def strict_json(line: str) -> dict[str, Any]:
    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    obj: dict[str, Any] = json.loads(line, parse_constant=reject)
    return obj


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = main(["read", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


# --- inputs that used to hang, crash or print NaN -------------------------------------


def test_fifo_device_and_odd_names_in_one_command(
    model: str, nih_png: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "incoming.dcm"
    os.mkfifo(fifo)
    not_utf8 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/bericht\xff.dcm"))  # Latin-1
    not_utf8.write_text("not an image")
    newline = tmp_path / "chest\nPA.png"
    shutil.copy(nih_png, newline)
    files = [str(fifo), "/dev/zero", str(not_utf8), str(newline)]
    exe = shutil.which("dxassist", path=str(Path(sys.executable).parent))
    assert exe, "console script dxassist is not installed in this environment"
    proc = subprocess.run(
        [exe, "read", "--json", "--model", model, "--heatmap-dir", str(tmp_path / "maps"), *files],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},  # strict: no surrogates allowed
    )
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == EXIT_INPUT, err
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert "Traceback" not in err and "internal error" not in err
    assert lines[0] == f"dxassist: {fifo}: is a named pipe (FIFO), not a regular file; " + (
        "save the image to a file and give its path"
    )
    assert lines[1].startswith("dxassist: /dev/zero: is a character device")
    assert lines[2].startswith(f"dxassist: {tmp_path}/bericht\\xff.dcm: not a DICOM, PNG or")
    objs = [strict_json(x) for x in proc.stdout.decode("utf-8").splitlines()]
    assert [o.get("error") is None for o in objs] == [False, False, False, True]
    assert objs[3]["file"] == str(newline)
    assert Path(objs[3]["heatmap"]).name == "chest_PA_heatmap.png"
    assert Path(objs[3]["heatmap"]).is_file()


def test_nan_blank_and_tiny_inputs(
    model: str, rg1_uncr: Path, nih_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan_slope = small_cr(
        rg1_uncr, tmp_path / "nan_slope.dcm", RescaleSlope="NaN", RescaleIntercept="0"
    )
    nan_window = small_cr(rg1_uncr, tmp_path / "nan_window.dcm", WindowWidth="nan")
    grey = np.asarray(Image.open(nih_png).convert("L"))
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros_like(grey)).save(black)
    one_px = tmp_path / "one_px.png"
    Image.fromarray(grey[:1, :1].copy()).save(one_px)
    files = [str(p) for p in (nan_slope, nan_window, black, one_px, nih_png)]

    code, out, err = run(capsys, "--json", "--model", model, "--no-heatmap", *files)
    assert code == EXIT_INPUT
    objs = [strict_json(x) for x in out]  # NaN used to be printed, which is not JSON
    assert [o["file"] for o in objs] == files
    assert len(err) == 3, err
    assert "Rescale Slope/Intercept" in err[0] and "NaN or infinity" in err[0]
    assert "image is blank" in err[1] and err[1].startswith(f"dxassist: {black}: ")
    assert "image is only 1x1 px" in err[2]
    assert any("percentile window was used" in w for w in objs[1]["warnings"])
    for o in (objs[1], objs[4]):
        assert sum(o["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    # the human-readable report used to die on NaN with an internal error
    code, out, err = run(capsys, "--model", model, "--no-heatmap", *files)
    assert code == EXIT_INPUT and len(err) == 3
    assert "internal error" not in "\n".join(err)
    assert sum("top finding" in line for line in out) == 2


def test_model_returning_nan_is_a_model_error(
    nih_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = build_model(tmp_path / "m", bias=(float("nan"),) * 4)
    code, out, err = run(capsys, "--json", "--model", str(broken), "--no-heatmap", str(nih_png))
    assert code == EXIT_MODEL
    assert out == [] and len(err) == 1 and "non-finite probabilities" in err[0]


# --- the heatmap folder and heatmap names ---------------------------------------------


@pytest.mark.parametrize(
    ("where", "phrase"),
    [
        ("file", "is a file, not a folder"),
        ("file/sub", "cannot be created (Not a directory)"),
        ("", "--heatmap-dir is empty"),
    ],
    ids=["is-a-file", "under-a-file", "empty"],
)
def test_bad_heatmap_dir_is_a_usage_error(
    where: str,
    phrase: str,
    model: str,
    nih_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("file").write_text("x")
    code, out, err = run(capsys, "--json", "--model", model, "--heatmap-dir", where, str(nih_png))
    # before: every file failed with "File exists (file); check the path" and no JSON
    assert code == EXIT_USAGE
    assert out == [] and len(err) == 1
    assert phrase in err[0] and "--no-heatmap" in err[0]


def test_heatmaps_never_collide_or_overwrite_an_input(
    model: str, nih_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    maps = tmp_path / "maps"
    for folder in ("a", "b", "maps"):
        (tmp_path / folder).mkdir()
    shutil.copy(nih_png, tmp_path / "a" / "x.png")
    shutil.copy(nih_png, tmp_path / "b" / "x.png")
    own = maps / "x_heatmap.png"  # an input that has the name x.png's heatmap would get
    shutil.copy(nih_png, own)
    before = own.read_bytes()
    files = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), str(own)]
    code, out, _ = run(capsys, "--json", "--model", model, "--heatmap-dir", str(maps), *files)
    assert code == EXIT_OK
    heatmaps = [strict_json(x)["heatmap"] for x in out]
    assert len(set(heatmaps)) == 3 and str(own) not in heatmaps
    assert own.read_bytes() == before  # used to be overwritten, then read as the input
    assert all(Path(h).is_file() for h in heatmaps)


def test_symlink_loop_with_heatmaps_is_one_input_error(
    model: str, nih_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = tmp_path / "a.dcm"
    loop.symlink_to(tmp_path / "b.dcm")
    (tmp_path / "b.dcm").symlink_to(loop)
    maps = str(tmp_path / "maps")
    code, out, err = run(capsys, "--model", model, "--heatmap-dir", maps, str(loop), str(nih_png))
    assert code == EXIT_INPUT and len(err) == 1, err
    assert err[0].startswith(f"dxassist: {loop}: cannot be read (Too many levels of symbolic")
    assert "check the path" in err[0]
    assert sum("top finding" in line for line in out) == 1


def test_very_long_file_name_still_gets_its_heatmap(
    model: str, nih_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_name = tmp_path / ("x" * 250 + ".png")
    shutil.copy(nih_png, long_name)
    maps = tmp_path / "maps"
    code, out, err = run(
        capsys, "--json", "--model", model, "--heatmap-dir", str(maps), str(long_name)
    )
    # before: "File name too long" for the heatmap and the read was lost
    assert code == EXIT_OK, err
    heatmap = Path(strict_json(out[0])["heatmap"])
    assert heatmap.is_file() and len(os.fsencode(heatmap.name)) <= 255


def test_heatmap_write_failure_keeps_one_json_object_per_file(
    model: str,
    nih_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = pipeline_module.write_overlay
    calls: list[Path] = []

    def disk_full(path: Path, *args: Any) -> Path:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args)

    monkeypatch.setattr(pipeline_module, "write_overlay", disk_full)
    other = tmp_path / "other.png"
    shutil.copy(nih_png, other)
    maps = str(tmp_path / "maps")
    code, out, err = run(
        capsys, "--json", "--model", model, "--heatmap-dir", maps, str(nih_png), str(other)
    )
    assert code == EXIT_INPUT
    objs = [strict_json(x) for x in out]
    assert len(objs) == 2 and objs[0]["file"] == str(nih_png)
    assert "heatmap could not be written" in objs[0]["error"]
    assert "No space left on device" in objs[0]["error"]
    assert "error" not in objs[1] and Path(objs[1]["heatmap"]).is_file()
    assert len(err) == 1 and err[0].startswith(f"dxassist: {nih_png}: heatmap could not be")


# --- output streams -------------------------------------------------------------------


def test_ascii_only_output_stays_valid_json(
    model: str,
    nih_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accented = tmp_path / "Thorax_Müller.png"
    shutil.copy(nih_png, accented)
    raw = Path(os.fsdecode(os.fsencode(tmp_path) + b"/r\xf6ntgen.png"))  # Latin-1 name
    shutil.copy(nih_png, raw)
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="ascii"))
    code = main(["read", "--json", "--model", model, "--no-heatmap", str(accented), str(raw)])
    sys.stdout.flush()
    # before: UnicodeEncodeError -> "internal error", exit 1, the next files never read
    assert code == EXIT_OK, capsys.readouterr().err
    objs = [strict_json(x) for x in buffer.getvalue().decode("ascii").splitlines()]
    assert [o["file"] for o in objs] == [str(accented), str(raw)]


class _ClosedPipe(io.TextIOBase):
    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_reader_going_away_is_not_an_internal_error(
    model: str, nih_png: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())  # as in `dxassist read ... | head -1`
    code = main(["read", "--model", model, "--no-heatmap", str(nih_png)])
    assert code == EXIT_BROKEN_PIPE
    assert "internal error" not in capsys.readouterr().err


def test_many_files_in_one_command(
    model: str, nih_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i in range(40):
        folder = tmp_path / f"d{i % 4}"
        folder.mkdir(exist_ok=True)
        link = folder / f"img{i // 4}.png"
        link.symlink_to(nih_png)
        files.append(str(link))
    bad = tmp_path / "d0" / "empty.png"
    bad.write_bytes(b"")
    files.insert(17, str(bad))
    maps = str(tmp_path / "maps")
    code, out, err = run(capsys, "--json", "--model", model, "--heatmap-dir", maps, *files)
    assert code == EXIT_INPUT and len(err) == 1 and "file is empty" in err[0]
    objs = [strict_json(x) for x in out]
    assert [o["file"] for o in objs] == files
    heatmaps = [o["heatmap"] for o in objs if "error" not in o]
    assert len(heatmaps) == 40 and len(set(heatmaps)) == 40


def test_a_film_of_another_body_part_is_not_read_as_a_chest(
    tmp_path: Path, rg1_uncr: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hand = pydicom.dcmread(rg1_uncr)
    hand.BodyPartExamined = "HAND"
    path = tmp_path / "hand.dcm"
    hand.save_as(path)
    assert main(["read", "--no-heatmap", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "Body Part Examined is HAND, not the chest" in err and "Traceback" not in err
    # a chest by any of its usual names is read
    for part in ("CHEST", "THORAX", "Chest"):
        hand.BodyPartExamined = part
        hand.save_as(path)
        assert main(["read", "--no-heatmap", str(path)]) == EXIT_OK
