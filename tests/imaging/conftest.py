"""Fixtures for the image-loading tests.

Every test file is derived at test time (into ``tmp_path``) from real images:
RG1_UNCR/RG1_J2KR from pydicom-data (a PA chest CR, MONOCHROME1, 15 bits stored), the
NIH ChestX-ray14 DX secondary capture and the PNG/JPEG files of the shared data set.
Nothing is copied into the repository.
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import ExplicitVRLittleEndian

from dxassist.imaging import Radiograph, load_file

REPO_ROOT = Path(__file__).resolve().parents[2]

#: 512 x 512 region of RG1 (lungs, mediastinum, ribs): derived files are made from it
#: so that each test encodes/decodes quickly.
CROP = (slice(600, 1112), slice(500, 1012))
#: RG1's own window (Window Center 15000, Width 30000).
RG1_WINDOW = (15000.0, 30000.0)

PickImage = Callable[[str], Path]

needs_dcmtk = pytest.mark.skipif(
    shutil.which("dcmcjpeg") is None,
    reason="dcmtk command-line tools not installed (apt-get install dcmtk)",
)


def shared_data_dir() -> Path:
    """``<repo>/../shared/data``, or ``$DXASSIST_SHARED_DATA``."""
    override = os.environ.get("DXASSIST_SHARED_DATA")
    return Path(override) if override else REPO_ROOT / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def cxr_dir() -> Path:
    """The shared chest X-ray data (``cxr/`` with ``manifest.csv``)."""
    path = shared_data_dir() / "cxr"
    if not (path / "manifest.csv").is_file():
        pytest.fail(f"shared test data not found at {path}; set DXASSIST_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def pick_image(cxr_dir: Path) -> PickImage:
    """Return the first image of a data set of the manifest (``"nih"``, ``"kermany"``...)."""
    with (cxr_dir / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))

    def pick(dataset: str) -> Path:
        for row in rows:
            if row["dataset"] == dataset:
                return cxr_dir / row["path"]
        pytest.fail(f"no {dataset} image in {cxr_dir / 'manifest.csv'}")

    return pick


@pytest.fixture(scope="session")
def nih_dx_path(cxr_dir: Path) -> Path:
    path = cxr_dir / "dicom" / "nih_cxr14_no_finding_DX.dcm"
    if not path.is_file():
        pytest.fail(f"{path} not found")
    return path


def _testdata(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.fail(f"pydicom-data file {name} not available (pip install pydicom-data)")
    return str(path)


@pytest.fixture(scope="session")
def rg1_path() -> str:
    return _testdata("RG1_UNCR.dcm")


@pytest.fixture(scope="session")
def rg1_j2k_path() -> str:
    return _testdata("RG1_J2KR.dcm")


@pytest.fixture(scope="session")
def rg1_dataset(rg1_path: str) -> FileDataset:
    """RG1 as read by pydicom; never modify it (tests take copies)."""
    return pydicom.dcmread(rg1_path)


@pytest.fixture(scope="session")
def rg1_stored(rg1_dataset: FileDataset) -> np.ndarray:
    """RG1's stored values (uint16, 15 bits used)."""
    arr = rg1_dataset.pixel_array
    arr.setflags(write=False)
    return arr


@pytest.fixture(scope="session")
def rg1_loaded(rg1_path: str) -> Radiograph:
    """RG1 through the loader, once per session."""
    return load_file(rg1_path)


@pytest.fixture(scope="session")
def crop_stored(rg1_stored: np.ndarray) -> np.ndarray:
    return rg1_stored[CROP].copy()


@pytest.fixture(scope="session")
def crop_expected(rg1_loaded: Radiograph) -> np.ndarray:
    """What any lossless re-encoding of the crop must load as (RG1's window applied)."""
    return rg1_loaded.pixels[CROP].copy()


@pytest.fixture(scope="session")
def header_template(rg1_dataset: FileDataset) -> FileDataset:
    """RG1's header without pixel data."""
    ds = copy.deepcopy(rg1_dataset)
    del ds.PixelData
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


MakeDataset = Callable[..., FileDataset]


@pytest.fixture
def make_dataset(header_template: FileDataset, crop_stored: np.ndarray) -> MakeDataset:
    """Build a copy of RG1's header holding `pixels` (default: the crop).

    Keyword arguments set data elements by keyword after the pixel data is set;
    ``None`` deletes the element.
    """

    def make(
        pixels: np.ndarray | None = None,
        photometric: str = "MONOCHROME1",
        bits_stored: int = 15,
        **elements: Any,
    ) -> FileDataset:
        ds = copy.deepcopy(header_template)
        ds.set_pixel_data(crop_stored if pixels is None else pixels, photometric, bits_stored)
        for keyword, value in elements.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        return ds

    return make


def write(ds: Dataset, path: Path, **kwargs: Any) -> Path:
    """Write `ds` as a DICOM file (file meta included unless told otherwise)."""
    pydicom.dcmwrite(path, ds, **kwargs)
    return path


def dcmtk(tool: str, *args: str | Path) -> None:
    """Run a dcmtk tool, failing the test with its output if it fails."""
    result = subprocess.run([tool, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{tool} failed: {result.stdout}{result.stderr}")


def window_expected(values: np.ndarray, center: float, width: float, *, invert: bool) -> np.ndarray:
    """DICOM LINEAR window (PS3.3 C.11.2.1.2.1) written out independently of pydicom."""
    x = values.astype(np.float64)
    out = np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    return 1.0 - out if invert else out


def percentile_expected(values: np.ndarray, *, invert: bool) -> np.ndarray:
    x = values.astype(np.float64)
    lo, hi = np.percentile(x, [0.5, 99.5])
    out: np.ndarray = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return 1.0 - out if invert else out
