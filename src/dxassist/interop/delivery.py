"""Delivering results back to the hospital: build a study's DICOM SR and heatmap Secondary
Capture once, send them to each configured destination, retry with back-off until sent.

A delivery row is created in the same commit that makes a DICOM-received study ``ready``
(:func:`dxassist.store.repository.mark_ready`), so no result is ever lost between the
analysis and the send; the :class:`Sender` thread works through the due ones.
"""

from __future__ import annotations

import io
import logging
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings, SettingsError, parse_destination
from dxassist.errors import DxAssistError
from dxassist.ingest import write_durably
from dxassist.interop.send import DeliveryError, send
from dxassist.store import repository
from dxassist.store.models import Study, StudyStatus

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
#: First retry after this many seconds, doubling per failed attempt up to MAX_DELAY_S.
BASE_DELAY_S = 15.0
MAX_DELAY_S = 3600.0


def result_paths(study_id: str) -> tuple[Path, Path]:
    """Where a study's SR and heatmap SC are kept, relative to the data folder."""
    folder = Path(RESULTS_DIR) / study_id
    return folder / "sr.dcm", folder / "heatmap_sc.dcm"


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def result_objects(settings: Settings, study: Study) -> list[Dataset]:
    """The study's SR and heatmap SC, built on first use and then kept, so every retry and
    every destination gets the same objects (same UIDs: a resend replaces, not adds)."""
    from dxassist.interop.result import AiResult
    from dxassist.interop.sc import build_heatmap_sc
    from dxassist.interop.sr import build_sr

    sr_rel, sc_rel = result_paths(study.id)
    sr_path, sc_path = settings.data_dir / sr_rel, settings.data_dir / sc_rel
    if sr_path.is_file():  # written last: the SC (if any) is there too
        kept: list[Dataset] = [pydicom.dcmread(sr_path)]
        if sc_path.is_file():
            kept.append(pydicom.dcmread(sc_path))
        return kept
    if study.status != StudyStatus.READY or study.probabilities is None:
        raise DeliveryError(f"study {study.id} has no AI read to send ({study.status})")
    try:
        source = pydicom.dcmread(settings.data_dir / study.file_path, stop_before_pixels=True)
    except Exception as exc:
        raise DeliveryError(
            f"the received file of study {study.id} cannot be read: {exc}"
        ) from None
    result = AiResult(
        probabilities=dict(study.probabilities),
        top_finding=study.top_finding or "",
        priority=study.priority or "",
        heatmap_finding=study.heatmap_finding,
        model_name=study.model_name or "",
        model_version=study.model_version or "",
        warnings=[str(w) for w in (study.warnings or [])],
    )
    sr = build_sr(source, result)
    objects = [sr]
    if study.heatmap_path:
        with Image.open(settings.data_dir / study.heatmap_path) as img:
            overlay = np.asarray(img.convert("RGB"))
        objects.append(build_heatmap_sc(source, overlay, result))
    if len(objects) > 1:
        write_durably(sc_path, _encode(objects[1]))
    write_durably(sr_path, _encode(sr))
    return objects


def backoff(attempts: int, base_s: float = BASE_DELAY_S, max_s: float = MAX_DELAY_S) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base, 2x, 4x... up to max."""
    return float(min(max_s, base_s * 2 ** max(0, attempts - 1)))


class Sender:
    """A background thread that sends due deliveries; failures are retried with back-off."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        poll_interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        with self.sessions() as session:
            due = [
                (d.id, d.study_id, d.destination, d.attempts)
                for d in repository.due_deliveries(session)
            ]
        for delivery_id, study_id, destination_text, attempts in due:
            if self._stop.is_set():
                break
            self._attempt(delivery_id, study_id, destination_text, attempts)
        return len(due)

    def _attempt(
        self, delivery_id: str, study_id: str, destination_text: str, attempts: int
    ) -> None:
        with self.sessions() as session:
            try:
                study = repository.get(session, study_id)
                if study is None:
                    return
                destination = parse_destination(destination_text)
                objects = result_objects(self.settings, study)
                send(objects, destination, self.settings.ae_title)
            except (DxAssistError, SettingsError, OSError) as exc:
                wait = backoff(attempts + 1, self.base_delay_s, self.max_delay_s)
                log.warning(
                    "results of study %s to %s: attempt %d failed (%s); retrying in %.0f s",
                    study_id,
                    destination_text,
                    attempts + 1,
                    exc,
                    wait,
                )
                repository.mark_delivery_failed(
                    session, delivery_id, str(exc), timedelta(seconds=wait)
                )
                return
            except Exception as exc:  # a bug: keep the delivery, say so, retry later
                wait = backoff(attempts + 1, self.base_delay_s, self.max_delay_s)
                log.exception(
                    "results of study %s to %s: unexpected error", study_id, destination_text
                )
                repository.mark_delivery_failed(
                    session,
                    delivery_id,
                    f"internal error ({type(exc).__name__}: {exc}); see the server log",
                    timedelta(seconds=wait),
                )
                return
            repository.mark_delivery_sent(session, delivery_id)
            log.info("results of study %s sent to %s", study_id, destination_text)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the sender is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dxassist-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("sender: error while sending results; continuing")
            self._wake.wait(self.poll_interval)
            self._wake.clear()
