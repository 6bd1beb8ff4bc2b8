"""The dciodvfy wrapper: a clear error when it is missing, errors found when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxassist.interop import validate
from tests.interop.conftest import needs_dciodvfy


def test_missing_dciodvfy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(validate.shutil, "which", lambda name: None)
    with pytest.raises(validate.ValidatorUnavailableError, match="apt-get install dicom3tools"):
        validate.dciodvfy_errors(tmp_path / "x.dcm")


@needs_dciodvfy
def test_dciodvfy_reports_a_non_dicom_file(tmp_path: Path) -> None:
    path = tmp_path / "not.dcm"
    path.write_bytes(b"this is not DICOM")
    assert validate.dciodvfy_errors(path) != []
    with pytest.raises(FileNotFoundError, match="no DICOM file"):
        validate.dciodvfy_errors(tmp_path / "absent.dcm")
