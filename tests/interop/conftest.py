"""One real read of the pydicom-data chest CR (RG1_UNCR), shared by the interop tests."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from PIL import Image

from dxassist.cxr.runtime import CxrModel
from dxassist.pipeline import ReadResult, read_file


@dataclass
class CrRead:
    path: Path
    source: pydicom.Dataset
    read: ReadResult
    json: dict[str, Any]
    overlay: npt.NDArray[np.uint8]


@pytest.fixture(scope="session")
def cr_read(rg1_uncr: Path, model: CxrModel, tmp_path_factory: pytest.TempPathFactory) -> CrRead:
    out = tmp_path_factory.mktemp("interop") / "rg1_heatmap.png"
    result = read_file(rg1_uncr, model, out)
    assert result.heatmap is not None
    overlay = np.asarray(Image.open(result.heatmap).convert("RGB"), dtype=np.uint8)
    return CrRead(rg1_uncr, pydicom.dcmread(rg1_uncr), result, result.to_json(), overlay)


def roundtrip(ds: pydicom.Dataset) -> pydicom.Dataset:
    """Write ``ds`` as a DICOM file to bytes and read it back."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def save(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


# skipped without the tool on a developer's machine; under CI (which installs it) a
# missing tool fails the tests instead of hiding them
needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None and not os.environ.get("CI"),
    reason="dciodvfy not installed (apt-get install dicom3tools); CI installs it",
)
