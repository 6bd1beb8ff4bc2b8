"""``dxassist export --deidentified``: reviewed studies as images + manifest + README with
no identifiers."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pydicom
import pytest
from PIL import Image

from dxassist.cli import main
from dxassist.cxr.manifest import REQUIRED_COLUMNS, read_manifest
from dxassist.imaging import load_file
from dxassist.store.models import Study
from tests.web.conftest import Service
from tests.web.test_api import upload

#: Header values of RG1_UNCR.dcm that identify the patient, the study or the site.
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "InstanceCreatorUID",
    "StudyDate",
    "SeriesDate",
    "ContentDate",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "ReferringPhysicianName",
)


def identifiers(path: Path) -> set[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    out: set[str] = set()
    for keyword in IDENTIFYING:
        value = str(ds.get(keyword, "") or "")
        if value:
            out.add(value)
            out.update(part for part in value.split("^") if len(part) >= 4)
            if len(value) == 8 and value.isdigit():  # a date, also as ISO
                out.add(f"{value[:4]}-{value[4:6]}-{value[6:]}")
    return out


def png_chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


def review(service: Service, study_id: str, labels: list[str]) -> None:
    r = service.radiologist.post(
        f"/api/v1/studies/{study_id}/review",
        json={"labels": labels, "agrees_with_ai": False, "note": "Mrs CompressedSamples, ward 3"},
    )
    assert r.status_code == 201, r.text


@pytest.fixture
def cli_env(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXASSIST_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("DXASSIST_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("DXASSIST_SITE", "test-site")


def test_export_holds_images_manifest_readme_and_no_identifiers(
    service: Service,
    cli_env: None,
    rg1_uncr: Path,
    rg1_j2kr: Path,
    nih_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dicom, png, unreviewed = upload(service, rg1_uncr, nih_png, rg1_j2kr)
    service.drain()
    review(service, dicom["id"], ["bacterial_pneumonia", "other"])
    review(service, png["id"], ["normal"])
    with service.sessions() as s:
        stored = s.get(Study, dicom["id"])
        assert stored is not None and stored.patient_key
        internal = {stored.id, png["id"], stored.patient_key, str(stored.file_path)}

    out = tmp_path / "export"
    assert main(["export", "--deidentified", str(out)]) == 0
    said = capsys.readouterr()
    assert "wrote 2 images of 2 patients" in said.out, said

    # the manifest is one `dxassist train` reads, with images that load
    with (out / "manifest.csv").open(newline="") as handle:
        raw = list(csv.DictReader(handle))
    assert tuple(raw[0])[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
    assert sorted(r["label"] for r in raw) == ["bacterial_pneumonia", "normal"]
    assert {r["dataset"] for r in raw} == {"test-site"}
    assert all(r["split"] in ("train", "val", "test") for r in raw)
    by_label = {r["label"]: r for r in raw}
    assert by_label["bacterial_pneumonia"]["labels"] == "bacterial_pneumonia;other"
    assert by_label["bacterial_pneumonia"]["view"] == "PA"
    rows = read_manifest(out / "manifest.csv", out)
    assert len(rows) == 2
    for row in rows:
        assert row.path.is_file() and row.path.parent == out / "images"
        data = row.path.read_bytes()
        assert set(png_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"pHYs"}
        with Image.open(row.path) as image:
            assert image.mode == "L" and max(image.size) <= 2048 and not image.info.keys() - {"dpi"}
        assert load_file(row.path).pixels.size > 0
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(r.path.name for r in rows)
    readme = (out / "README.md").read_text()
    for words in ("2 patients", "No identifiers", "Licence", "dxassist train --manifest"):
        assert words in readme

    # no identifier of the source DICOM, of the NIH file, or of dxassist's own records
    needles = identifiers(rg1_uncr) | internal | {"RG1_UNCR", nih_png.stem, unreviewed["id"]}
    needles |= {"CompressedSamples", "ward 3"}  # the review note is not exported
    assert "9RG1" in needles and "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457" in needles
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 4
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            for form in {needle, needle.lower(), needle.upper()}:
                assert form.encode() not in data, (path.name, needle)
        assert b"RG1" not in data or path.suffix == ".png", path.name


def test_export_refuses_a_non_empty_folder_unless_forced(
    service: Service,
    cli_env: None,
    nih_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (study,) = upload(service, nih_png)
    service.drain()
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", "--deidentified", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is not empty (notes.txt)" in err and "--force" in err and "Traceback" not in err
    assert not (out / "manifest.csv").exists()

    review(service, study["id"], ["normal"])
    assert main(["export", "--deidentified", str(out), "--force"]) == 0
    first = sorted((out / "images").iterdir())
    assert len(first) == 1 and (out / "notes.txt").exists()
    # forced again: the earlier export is replaced, the same pseudonym comes back
    assert main(["export", "--deidentified", str(out), "--force"]) == 0
    assert sorted((out / "images").iterdir()) == first

    a_file = tmp_path / "file"
    a_file.write_text("x")
    capsys.readouterr()
    assert main(["export", "--deidentified", str(a_file)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_export_with_nothing_reviewed_writes_an_empty_manifest(
    service: Service, cli_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "empty"
    assert main(["export", "--deidentified", str(out)]) == 0
    assert "no reviewed studies yet" in capsys.readouterr().err
    assert read_manifest(out / "manifest.csv") == []
