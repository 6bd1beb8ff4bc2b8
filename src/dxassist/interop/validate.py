"""Run dicom3tools' ``dciodvfy`` (Debian package ``dicom3tools``) on a DICOM file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dxassist.errors import DxAssistError


class ValidatorUnavailableError(DxAssistError):
    """The DICOM validator is not installed."""

    exit_code = 5


def dciodvfy_path() -> str | None:
    """Where ``dciodvfy`` is, or None."""
    return shutil.which("dciodvfy")


def dciodvfy_messages(path: Path | str, timeout: float = 60.0) -> list[str]:
    """Every ``Error``/``Warning`` line dciodvfy prints for ``path``."""
    exe = dciodvfy_path()
    if exe is None:
        raise ValidatorUnavailableError(
            "dciodvfy is not installed; install dicom3tools (Debian/Ubuntu: "
            "`apt-get install dicom3tools`) to validate DICOM objects"
        )
    if not Path(path).is_file():
        raise FileNotFoundError(f"no DICOM file at {path}")
    proc = subprocess.run(
        [exe, str(path)], capture_output=True, text=True, errors="replace", timeout=timeout
    )
    lines = (proc.stdout + "\n" + proc.stderr).splitlines()
    return [ln.strip() for ln in lines if ln.startswith(("Error", "Warning"))]


def dciodvfy_errors(path: Path | str) -> list[str]:
    """The lines dciodvfy reports as errors for ``path`` (empty: the object is valid)."""
    return [m for m in dciodvfy_messages(path) if m.startswith("Error")]


def dciodvfy_warnings(path: Path | str) -> list[str]:
    """The lines dciodvfy reports as warnings for ``path``."""
    return [m for m in dciodvfy_messages(path) if m.startswith("Warning")]
