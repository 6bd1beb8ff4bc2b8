"""The DICOM receiver: a C-STORE / C-ECHO service class provider (pynetdicom).

Each received instance goes through the same door as an upload (:func:`receive_files`):
it is written to disk and its study row committed *before* the success status is
returned, so a sender never hears "stored" for something that is not. Instances that are
not chest radiographs are kept as ``skipped`` studies or refused, as configured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    Verification,
)
from sqlalchemy.orm import Session, sessionmaker

from dxassist.audit import trail as audit
from dxassist.config import Settings, SettingsError
from dxassist.ingest import ReceiveError, receive_files
from dxassist.store import repository

log = logging.getLogger(__name__)
# pynetdicom logs every request's UIDs at INFO and whole datasets at DEBUG: identifiers,
# which must not reach dxassist's logs (warnings and errors are kept)
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

#: SOP classes that can hold a chest film: analysed when the content is one.
RADIOGRAPH_SOP_CLASSES: tuple[UID, ...] = (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
)

#: Transfer syntaxes accepted: every one the reading engine can decode (uncompressed,
#: deflate, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE).
TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)

#: Largest PDU we accept (the sender splits a film over many).
MAX_PDU_BYTES = 1024 * 1024
#: Associations served at once (pynetdicom's default is 10).
MAX_ASSOCIATIONS = 32

SUCCESS = 0x0000
#: "Refused: Out of Resources": we could not store it (disk, database); send it again.
OUT_OF_RESOURCES = 0xA700
#: "Error: Data Set does not match SOP Class" (used for a request/dataset UID mismatch).
DOES_NOT_MATCH = 0xA900
#: "Error: Cannot understand": the instance is unreadable or not wanted (refuse policy).
CANNOT_UNDERSTAND = 0xC000


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        # Error Comment is LO: at most 64 characters, no backslash
        status.ErrorComment = comment.replace("\\", "/")[:64]
    return status


class DicomReceiver:
    """A C-STORE SCP on `port` with AE title `settings.ae_title`.

    >>> receiver = DicomReceiver(settings, sessions, port=11112, on_stored=worker.wake)
    >>> receiver.start()          # doctest: +SKIP
    >>> receiver.stop()           # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        port: int,
        host: str = "0.0.0.0",
        ae_title: str | None = None,
        allowed_aets: Sequence[str] | None = None,
        non_chest: str | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.host = host
        self.port = port
        self.ae_title = ae_title or settings.ae_title
        self.allowed_aets = tuple(
            settings.dicom_allowed_aets if allowed_aets is None else allowed_aets
        )
        self.non_chest = non_chest or settings.non_chest
        self.on_stored = on_stored
        self._server: Any = None
        self._lock = threading.Lock()
        self.counts = {"stored": 0, "skipped": 0, "duplicate": 0, "refused": 0, "failed": 0}

    def _make_ae(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        # a film arrives in many PDUs of at most this size (bounded memory per PDU)
        ae.maximum_pdu_size = MAX_PDU_BYTES
        # silent sockets and idle associations must not hold the receiver's slots for long
        ae.maximum_associations = MAX_ASSOCIATIONS
        ae.acse_timeout = 10
        ae.dimse_timeout = 60
        ae.network_timeout = 60
        # a modality configured with another node's AE title is told so, not "stored"
        ae.require_called_aet = True
        ae.add_supported_context(Verification)
        if self.non_chest == "store":
            # keep anything the hospital sends (a CT, a report) and show it as skipped
            wanted = {str(c.abstract_syntax) for c in StoragePresentationContexts}
            wanted.update(str(u) for u in RADIOGRAPH_SOP_CLASSES)
        else:
            wanted = {str(u) for u in RADIOGRAPH_SOP_CLASSES}
        for sop_class in sorted(wanted):
            ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        if self.allowed_aets:
            ae.require_calling_aet = list(self.allowed_aets)
        return ae

    def start(self) -> None:
        """Listen in background threads; raises DxAssistError if the port is taken."""
        ae = self._make_ae()
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        try:
            self._server = ae.start_server(
                (self.host, self.port), block=False, evt_handlers=handlers
            )
        except OSError as exc:
            raise SettingsError(
                f"cannot listen for DICOM on {self.host}:{self.port} ({exc.strerror or exc}); "
                "choose another --dicom-port or stop the program that uses it"
            ) from None
        allowed = ", ".join(self.allowed_aets) if self.allowed_aets else "any calling AE"
        log.info(
            "DICOM receiver %s listening on %s:%d (%s; non-chest instances: %s)",
            self.ae_title,
            self.host,
            self.port,
            allowed,
            self.non_chest,
        )

    @property
    def bound_port(self) -> int:
        """The port actually listened on (useful when started on port 0)."""
        if self._server is None:
            return self.port
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _adopt(self, study_id: str, calling: str) -> int:
        """The PACS sent a study dxassist had already (uploaded earlier): send it the results."""
        destinations = [str(d) for d in self.settings.destinations]
        if not destinations:
            return 0
        try:
            with self.sessions() as session:
                return repository.adopt_for_delivery(session, study_id, calling, destinations)
        except Exception:
            log.exception("study %s: could not schedule its results for the PACS", study_id)
            return 0

    def _on_echo(self, event: Any) -> int:
        log.info("C-ECHO from %s", event.assoc.requestor.ae_title)
        return SUCCESS

    def _on_rejected(self, event: Any) -> None:
        requestor, acceptor = event.assoc.requestor, event.assoc.acceptor
        called = str(getattr(acceptor, "ae_title", "") or "").strip()
        if called and called != self.ae_title:
            why = f"it called AE title {called!r}, and this receiver is {self.ae_title!r}"
        else:
            why = "its calling AE title is not in the allow-list (--allow-aet)"
        log.warning(
            "DICOM association from %s (%s) rejected: %s",
            requestor.ae_title,
            requestor.address,
            why,
        )

    def _on_store(self, event: Any) -> Dataset:
        calling = str(event.assoc.requestor.ae_title).strip()
        sop_uid = str(event.request.AffectedSOPInstanceUID or "")
        # the UIDs are identifiers: never in logs or error messages (the study id is)
        name = "instance"
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception as exc:  # a dataset pynetdicom cannot even frame as a file
            self._count("refused")
            log.warning("C-STORE %s from %s refused: %s", name, calling, exc)
            return _status(CANNOT_UNDERSTAND, f"cannot decode the instance: {exc}")
        try:
            in_dataset = str(event.dataset.get("SOPInstanceUID") or "").strip()
        except Exception:
            in_dataset = ""
        if in_dataset and in_dataset != sop_uid:
            self._count("refused")
            log.warning(
                "C-STORE from %s refused: the request's SOP Instance UID is not the dataset's",
                calling,
            )
            return _status(DOES_NOT_MATCH, "SOP Instance UID differs from the C-STORE request's")
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            self._count("refused")
            log.warning(
                "C-STORE %s from %s refused: %d bytes, over the %g MB limit",
                name,
                calling,
                len(data),
                self.settings.max_upload_mb,
            )
            return _status(
                OUT_OF_RESOURCES, f"over the {self.settings.max_upload_mb:g} MB limit per image"
            )
        try:
            with self.sessions() as session:
                (received,) = receive_files(
                    self.settings,
                    session,
                    [(data, name)],
                    source="dicom",
                    calling_ae=calling,
                    keep_non_chest=self.non_chest == "store",
                )
                study_id, status = received.study.id, str(received.study.status)
                # stored and audited before the sender hears success; an audit failure
                # is a failure (the sender retries; the retry is a recorded duplicate)
                audit.record(
                    session,
                    audit.Action.DICOM_RECEIVE,
                    actor=calling,
                    actor_role="dicom",
                    study_id=study_id,
                    detail={"duplicate": received.duplicate, "status": status},
                    client=_peer(event),
                )
        except ReceiveError as exc:
            self._count("refused")
            reason = exc.problems[0][1].removeprefix(f"{name}: ")
            log.warning("C-STORE %s from %s refused (not stored): %s", name, calling, reason)
            return _status(CANNOT_UNDERSTAND, reason)
        except Exception:
            # the disk or the database failed: nothing is acknowledged, the sender retries
            self._count("failed")
            log.exception("C-STORE %s from %s: could not be stored", name, calling)
            return _status(OUT_OF_RESOURCES, "dxassist could not store it; send it again")
        if received.duplicate:
            self._count("duplicate")
            added = self._adopt(study_id, calling)
            log.info(
                "C-STORE %s from %s: already received (study %s)%s",
                name,
                calling,
                study_id,
                f"; its results will now be sent to {added} destination(s)" if added else "",
            )
        elif status == "quarantined":
            self._count("stored")
            log.info(
                "C-STORE %s from %s: stored, held in quarantine (study %s)", name, calling, study_id
            )
        elif status == "skipped":
            self._count("skipped")
            log.info("C-STORE %s from %s: stored, not analysed (study %s)", name, calling, study_id)
        else:
            self._count("stored")
            log.info("C-STORE %s from %s: stored as study %s", name, calling, study_id)
            if self.on_stored is not None:
                self.on_stored()
        return _status(SUCCESS)


def _peer(event: Any) -> str | None:
    """host:port of the association's requestor."""
    try:
        requestor = event.assoc.requestor
        return f"{requestor.address}:{requestor.port}"
    except Exception:
        return None
