"""Delivering results back to the hospital: build a study's DICOM SR and heatmap Secondary
Capture once, send them to each configured destination, retry with back-off until sent.

A delivery row is created in the same commit that makes a DICOM-received study ``ready``
(:func:`dxassist.store.repository.mark_ready`), so no result is ever lost between the
analysis and the send; the :class:`Sender` thread works through the due ones.
"""

from __future__ import annotations

import copy
import io
import logging
import re
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings, SettingsError, parse_destination
from dxassist.errors import DxAssistError
from dxassist.ingest import write_durably
from dxassist.interop.send import send
from dxassist.privacy.linkstore import LinkKeyError, LinkStore, Originals
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


class BuildError(DxAssistError):
    """The result objects of a study cannot be made; retrying will not help (the delivery
    is marked failed, visibly, instead of being retried for ever)."""


def _utf8_source(source: Dataset) -> Dataset:
    """A copy of the source header with every text decoded and re-declared as UTF-8, so the
    result objects can be written whatever character set the modality used (ISO 2022 IR 58
    Chinese, a misspelt or unknown one: pydicom decodes with a warning)."""
    out = copy.deepcopy(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out.decode()
        except Exception as exc:
            raise BuildError(f"the source's text cannot be decoded ({exc})") from None
    out.walk(_drop_escapes)
    out.SpecificCharacterSet = "ISO_IR 192"
    return out


#: ISO 2022 escape sequences (ESC $ ) A for GB2312, ESC ( B for ASCII...): pydicom leaves
#: some in decoded text; in UTF-8 they would be stray control characters.
_ESCAPES = re.compile(r"\x1b[$()*+\-./]{1,2}[@A-Z]")


def _drop_escapes(ds: Dataset, elem: DataElement) -> None:
    value = elem.value
    if isinstance(value, str) and "\x1b" in value:
        elem.value = _ESCAPES.sub("", value)
    elif isinstance(value, PersonName) and "\x1b" in str(value):
        elem.value = PersonName(_ESCAPES.sub("", str(value)))
    elif isinstance(value, MultiValue) and any("\x1b" in str(v) for v in value):
        elem.value = [_ESCAPES.sub("", str(v)) for v in value]


def result_objects(settings: Settings, study: Study) -> list[Dataset]:
    """The study's SR and heatmap SC, built on first use and then kept, so every retry and
    every destination gets the same objects (same UIDs: a resend replaces, not adds).

    Raises :class:`BuildError` when they cannot be built (no AI read, unreadable file,
    header the builders refuse)."""
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
        raise BuildError(f"study {study.id} has no AI read to send ({study.status})")
    try:
        received = pydicom.dcmread(settings.data_dir / study.file_path, stop_before_pixels=True)
    except Exception as exc:
        raise BuildError(f"the received file cannot be read: {exc}") from None
    try:
        source = _utf8_source(received)
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
    except BuildError:
        raise
    except (DxAssistError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise BuildError(
            f"the SR/heatmap cannot be built from this image's header ({type(exc).__name__}: {exc})"
        ) from None
    if len(objects) > 1:
        write_durably(sc_path, _encode(objects[1]))
    write_durably(sr_path, _encode(sr))
    return objects


def reidentified(datasets: list[Dataset], originals: Originals | None) -> list[Dataset]:
    """Copies of the result objects as the PACS knows the study: every pseudonymous UID
    that came from the received image (study, series, SOP instance, frame of reference)
    back to the original, the patient's ID and name, the accession number and the study
    date restored from the link store. The objects kept on disk stay de-identified; these
    copies exist only while they are sent."""
    if originals is None:
        return datasets
    out: list[Dataset] = []
    shift = originals.date_shift_days

    def restore(ds: Dataset, elem: DataElement) -> None:
        if elem.VR == "UI" and isinstance(elem.value, str) and elem.value in originals.uids:
            elem.value = originals.uids[elem.value]
        elif elem.VR == "UI" and isinstance(elem.value, MultiValue):
            elem.value = [originals.uids.get(str(v), str(v)) for v in elem.value]

    for ds in datasets:
        copy_ = copy.deepcopy(ds)
        copy_.walk(restore)
        if originals.study_instance_uid:
            copy_.StudyInstanceUID = originals.study_instance_uid
        copy_.PatientID = originals.patient_id or ""
        copy_.PatientName = originals.patient_name or ""
        copy_.AccessionNumber = originals.accession_number or ""
        study_date = str(copy_.get("StudyDate") or "")
        if shift and len(study_date) == 8 and study_date.isdigit():
            day = datetime.strptime(study_date, "%Y%m%d") - timedelta(days=shift)
            copy_.StudyDate = day.strftime("%Y%m%d")
        out.append(copy_)
    return out


def backoff(attempts: int, base_s: float = BASE_DELAY_S, max_s: float = MAX_DELAY_S) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base, 2x, 4x... up to max."""
    return float(min(max_s, base_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class _Due:
    id: str
    study_id: str
    destination: str
    attempts: int


class Sender:
    """Sends due deliveries in the background, one thread per destination at a time, so a
    PACS that hangs delays only its own deliveries. A failed attempt is retried with
    back-off; the destination's other due deliveries then wait for the same retry instead
    of each waiting for the same timeout. Results that cannot be built are marked failed.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        poll_interval: float = 2.0,
        max_parallel: int = 8,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.poll_interval = poll_interval
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="dxassist-send")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, wait: bool = False) -> int:
        """Start sending the due deliveries of every destination not busy already; returns
        how many were handed out. With `wait`, return when they are done."""
        with self.sessions() as session:
            due = [
                _Due(d.id, d.study_id, d.destination, d.attempts)
                for d in repository.due_deliveries(session, limit=500)
            ]
        by_destination: dict[str, list[_Due]] = {}
        for item in due:
            by_destination.setdefault(item.destination, []).append(item)
        futures: list[Future[None]] = []
        handed = 0
        for destination, items in by_destination.items():
            with self._lock:
                if destination in self._busy:
                    continue
                self._busy.add(destination)
            try:
                futures.append(self._pool.submit(self._round, destination, items))
            except RuntimeError:  # the pool is shut down: we are stopping
                with self._lock:
                    self._busy.discard(destination)
                break
            handed += len(items)
        if wait:
            for future in futures:
                future.result()
        return handed

    def _round(self, destination_text: str, items: list[_Due]) -> None:
        try:
            for n, item in enumerate(items):
                if self._stop.is_set():
                    return
                if not self._attempt(item):
                    # the destination failed: its other due deliveries wait for the retry
                    wait = backoff(item.attempts + 1, self.base_delay_s, self.max_delay_s)
                    with self.sessions() as session:
                        for later in items[n + 1 :]:
                            repository.postpone_delivery(
                                session,
                                later.id,
                                f"not tried: {destination_text} failed a moment ago",
                                timedelta(seconds=wait),
                            )
                    return
        finally:
            with self._lock:
                self._busy.discard(destination_text)

    def _attempt(self, item: _Due) -> bool:
        """One attempt; True if sent or failed for good (no point in trying the next one
        later), False if the destination itself failed."""
        with self.sessions() as session:
            study = repository.get(session, item.study_id)
            if study is None:
                return True
            try:
                destination = parse_destination(item.destination)
                with self._build_lock:  # two destinations, one set of objects (same UIDs)
                    objects = result_objects(self.settings, study)
                # the integration path is the one reader of the link store: the PACS gets
                # the results under the study's original identifiers
                originals = (
                    LinkStore.open(self.settings.data_dir).original_uids(
                        study.study_instance_uid, study.sop_instance_uid
                    )
                    if study.study_instance_uid
                    else None
                )
                if originals is None:
                    # never file results in the PACS under pseudonyms it does not know
                    raise BuildError(
                        "the link store has no original identifiers for this image (received "
                        "before de-identification, or its record is missing), so the PACS "
                        "could not match the results to its study; not sent"
                    )
                objects = reidentified(objects, originals)
            except (BuildError, SettingsError, LinkKeyError) as exc:
                log.warning(
                    "results of study %s to %s cannot be sent: %s", study.id, item.destination, exc
                )
                repository.mark_delivery_given_up(session, item.id, str(exc))
                return True
            try:
                send(objects, destination, self.settings.ae_title)
            except (DxAssistError, OSError) as exc:
                self._retry_later(session, item, str(exc))
                return False
            except Exception as exc:  # a bug: keep the delivery, say so, retry later
                if item.attempts == 0:
                    log.exception("results of study %s to %s", study.id, item.destination)
                self._retry_later(
                    session, item, f"internal error ({type(exc).__name__}); see the server log"
                )
                return False
            repository.mark_delivery_sent(session, item.id)
            log.info("results of study %s sent to %s", study.id, item.destination)
            return True

    def _retry_later(self, session: Session, item: _Due, error: str) -> None:
        wait = backoff(item.attempts + 1, self.base_delay_s, self.max_delay_s)
        log.warning(
            "results of study %s to %s: attempt %d failed (%s); retrying in %.0f s",
            item.study_id,
            item.destination,
            item.attempts + 1,
            error,
            wait,
        )
        repository.mark_delivery_failed(session, item.id, error, timedelta(seconds=wait))

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
        # an attempt in flight ends by its own timeout; it stays pending and is retried
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("sender: error while sending results; continuing")
            self._wake.wait(self.poll_interval)
            self._wake.clear()
