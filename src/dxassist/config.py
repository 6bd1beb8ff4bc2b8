"""All settings in one typed place, read from the environment (``DXASSIST_*``).

``DXASSIST_DATA_DIR``
    Where received files, heatmaps and the SQLite database live (default
    ``./dxassist-data``).
``DXASSIST_DATABASE_URL``
    SQLAlchemy URL of the database (default ``sqlite:///<data_dir>/dxassist.db``);
    e.g. ``postgresql+psycopg://user@host/dxassist`` switches to PostgreSQL.
``DXASSIST_SITE``
    Name of this site, written as ``dataset`` in the training export (default ``local``).
``DXASSIST_MAX_UPLOAD_MB``
    Largest file accepted by upload, in MB (default 200; the largest chest CR/DX files are
    under 60 MB uncompressed).
``DXASSIST_AE_TITLE``
    The DICOM application entity title dxassist answers to (default ``DXASSIST``).
``DXASSIST_DICOM_PORT``
    Port of the DICOM receiver (C-STORE/C-ECHO) that ``dxassist serve`` starts; unset: none.
``DXASSIST_DICOM_ALLOWED_AETS``
    Comma-separated calling AE titles allowed to send (default: any).
``DXASSIST_DICOM_NON_CHEST``
    ``store`` (default): a received instance that is not a chest radiograph (CT, an SR, a
    hand film) is stored and shown as *skipped*, never analysed; ``refuse``: it is refused
    with a DICOM failure status and not stored.
``DXASSIST_ALLOW_BURNED_IN``
    ``1``: analyse DICOM images that may carry burned-in identifying text (Burned In
    Annotation YES, or absent on a modality/class known to burn text in) at once; default:
    hold them as *quarantined* until an administrator releases them.
``DXASSIST_SEND_TO``
    Comma-separated destinations for results (DICOM SR + heatmap Secondary Capture) of
    studies received over DICOM: ``AET@host:port`` for C-STORE, ``http(s)://.../dicom-web``
    for STOW-RS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dxassist.errors import DxAssistError

DEFAULT_DATA_DIR = Path("dxassist-data")
DEFAULT_SITE = "local"
DEFAULT_MAX_UPLOAD_MB = 200.0
DEFAULT_AE_TITLE = "DXASSIST"
NON_CHEST_POLICIES = ("store", "refuse")
_AET_RE = re.compile(r"^[\x21-\x5b\x5d-\x7e](?:[\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$")


class SettingsError(DxAssistError):
    """A ``DXASSIST_*`` variable holds a value that cannot be used."""

    exit_code = 2


def check_ae_title(value: str, what: str) -> str:
    """`value` as a DICOM AE title (1-16 printable ASCII characters, no backslash), or a
    SettingsError saying what is wrong with it."""
    text = value.strip()
    if not _AET_RE.match(text):
        raise SettingsError(
            f"{what} {value!r} is not a DICOM AE title: 1 to 16 printable ASCII characters, "
            "no backslash, no leading or trailing spaces"
        )
    return text


@dataclass(frozen=True)
class DicomDestination:
    """A DICOM node (a PACS, Orthanc) that results are sent to by C-STORE."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class StowDestination:
    """A DICOMweb server that results are sent to by STOW-RS (``POST {url}/studies``)."""

    url: str

    def __str__(self) -> str:
        return self.url


Destination = DicomDestination | StowDestination


def parse_destination(text: str) -> Destination:
    """``AET@host:port`` (C-STORE) or ``http(s)://host/path`` (STOW-RS); SettingsError else."""
    value = text.strip()
    if value.startswith(("http://", "https://")):
        if len(value.split("//", 1)[1].strip("/")) == 0:
            raise SettingsError(f"destination {text!r} has no host")
        return StowDestination(value.rstrip("/"))
    aet, at, address = value.partition("@")
    host, colon, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):  # [::1]:104, an IPv6 address
        host = host[1:-1]
    elif ":" in host:
        host = ""  # h:1:2, or an IPv6 address without brackets
    if not at or not colon or not host:
        raise SettingsError(
            f"destination {text!r} is neither AET@host:port (DICOM C-STORE, e.g. "
            "PACS@10.0.0.5:104 or PACS@[fd00::5]:104) nor an http(s):// DICOMweb URL "
            "(STOW-RS)"
        )
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise SettingsError(f"destination {text!r}: port {port_text!r} is not 1-65535")
    return DicomDestination(check_ae_title(aet, f"destination {text!r}: AE title"), host, port)


@dataclass(frozen=True)
class Settings:
    """The service's settings; build one with :meth:`from_env` or directly in tests."""

    data_dir: Path
    database_url: str
    site: str = DEFAULT_SITE
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    ae_title: str = DEFAULT_AE_TITLE
    dicom_port: int | None = None
    dicom_host: str = "0.0.0.0"
    dicom_allowed_aets: tuple[str, ...] = ()
    non_chest: str = "store"
    destinations: tuple[Destination, ...] = field(default_factory=tuple)
    allow_burned_in: bool = False

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``DXASSIST_*`` variables (``os.environ`` unless given).

        Raises :class:`SettingsError` naming the variable when a value cannot be used.
        """
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DXASSIST_DATA_DIR") or DEFAULT_DATA_DIR)
        database_url = env.get("DXASSIST_DATABASE_URL") or default_database_url(data_dir)
        site = (env.get("DXASSIST_SITE") or DEFAULT_SITE).strip() or DEFAULT_SITE
        raw_mb = env.get("DXASSIST_MAX_UPLOAD_MB") or str(DEFAULT_MAX_UPLOAD_MB)
        try:
            max_upload_mb = float(raw_mb)
        except ValueError:
            max_upload_mb = float("nan")
        if not max_upload_mb > 0 or max_upload_mb == float("inf"):
            raise SettingsError(
                f"DXASSIST_MAX_UPLOAD_MB={raw_mb!r} is not a positive number of megabytes"
            )
        ae_title = check_ae_title(
            env.get("DXASSIST_AE_TITLE") or DEFAULT_AE_TITLE, "DXASSIST_AE_TITLE"
        )
        dicom_port: int | None = None
        raw_port = (env.get("DXASSIST_DICOM_PORT") or "").strip()
        if raw_port:
            try:
                dicom_port = int(raw_port)
            except ValueError:
                dicom_port = -1
            if not 0 < dicom_port < 65536:
                raise SettingsError(f"DXASSIST_DICOM_PORT={raw_port!r} is not a port (1-65535)")
        allowed = tuple(
            check_ae_title(a, "DXASSIST_DICOM_ALLOWED_AETS entry")
            for a in (env.get("DXASSIST_DICOM_ALLOWED_AETS") or "").split(",")
            if a.strip()
        )
        non_chest = (env.get("DXASSIST_DICOM_NON_CHEST") or "store").strip().lower()
        if non_chest not in NON_CHEST_POLICIES:
            raise SettingsError(
                f"DXASSIST_DICOM_NON_CHEST={non_chest!r} must be 'store' (keep, do not "
                "analyse) or 'refuse' (DICOM failure status, not stored)"
            )
        send_to = (env.get("DXASSIST_SEND_TO") or "").split(",")
        destinations = tuple(parse_destination(d) for d in send_to if d.strip())
        raw_burned = (env.get("DXASSIST_ALLOW_BURNED_IN") or "0").strip().lower()
        if raw_burned not in ("0", "1", "yes", "no", "true", "false"):
            raise SettingsError(f"DXASSIST_ALLOW_BURNED_IN={raw_burned!r} must be 0 or 1")
        return cls(
            allow_burned_in=raw_burned in ("1", "yes", "true"),
            data_dir=data_dir,
            database_url=database_url,
            site=site,
            max_upload_mb=max_upload_mb,
            ae_title=ae_title,
            dicom_port=dicom_port,
            dicom_allowed_aets=allowed,
            non_chest=non_chest,
            destinations=destinations,
        )

    @classmethod
    def for_data_dir(cls, data_dir: Path, database_url: str | None = None) -> Settings:
        """Settings for `data_dir`, with the SQLite database inside it unless a URL is given."""
        return cls(data_dir=data_dir, database_url=database_url or default_database_url(data_dir))


def default_database_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/dxassist.db`` (absolute, so the working folder does not matter)."""
    return f"sqlite:///{data_dir.absolute() / 'dxassist.db'}"
