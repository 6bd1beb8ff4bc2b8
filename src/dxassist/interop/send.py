"""Sending DICOM objects to a destination: C-STORE (pynetdicom) or STOW-RS (dicomweb-client).

C-STORE proposes, for each SOP class, the object's own transfer syntax and the two
uncompressed ones; when the peer accepts only uncompressed, a compressed object is
decoded and sent uncompressed (a PACS that refuses JPEG 2000 still gets the result).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context

from dxassist.config import Destination, DicomDestination, StowDestination
from dxassist.errors import DxAssistError

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class DeliveryError(DxAssistError):
    """The destination did not take the results; the message says why (retried later)."""


def _syntax(ds: Dataset) -> UID:
    return UID(str(ds.file_meta.TransferSyntaxUID))


def _as_syntax(ds: Dataset, target: UID) -> Dataset:
    """`ds` re-encoded in the uncompressed transfer syntax `target` (or unchanged if it is
    in `target` already): decompressed if needed, then written and read back, so every
    element, nested sequences included, really is in the new encoding (changing the label
    alone would send explicit-VR bytes as implicit)."""
    if _syntax(ds) == target:
        return ds
    out = copy.deepcopy(ds)
    if out.file_meta.TransferSyntaxUID.is_compressed:
        out.decompress()  # to Explicit VR Little Endian
    out.file_meta.TransferSyntaxUID = target
    buffer = io.BytesIO()
    pydicom.dcmwrite(
        buffer,
        out,
        implicit_vr=target == ImplicitVRLittleEndian,
        little_endian=True,
        enforce_file_format=True,
    )
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _stored(code: int) -> bool:
    """A C-STORE response status that means "stored": success, or a warning (0001, 0107,
    0116, Bxxx), per PS3.4 Annex B and PS3.7 Annex C."""
    return code == 0x0000 or code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code <= 0xBFFF


def send_cstore(
    datasets: Sequence[Dataset],
    destination: DicomDestination,
    calling_ae: str,
    timeout_s: float = 30.0,
) -> None:
    """C-STORE every dataset in one association; DeliveryError unless all are stored."""
    ae = AE(ae_title=calling_ae)
    ae.connection_timeout = min(5.0, timeout_s)  # a host that does not answer at all
    ae.acse_timeout = min(10.0, timeout_s)
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    contexts = []
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        own = {_syntax(ds) for ds in datasets if str(ds.SOPClassUID) == sop_class}
        syntaxes: list[str | UID] = [*sorted(own - set(UNCOMPRESSED)), *UNCOMPRESSED]
        contexts.append(build_context(sop_class, syntaxes))
    assoc = ae.associate(
        destination.host, destination.port, contexts=contexts, ae_title=destination.ae_title
    )
    if not assoc.is_established:
        if assoc.is_rejected:
            why = "rejected the association (is dxassist's calling AE title allowed there?)"
        elif assoc.rejected_contexts and not assoc.accepted_contexts:
            names = sorted({UID(str(cx.abstract_syntax)).name for cx in assoc.rejected_contexts})
            why = (
                f"does not accept {' or '.join(names)} objects; allow that SOP class (and an "
                "uncompressed transfer syntax) on the PACS"
            )
        else:  # pynetdicom reports a refused connection as an abort
            why = (
                "could not be reached (connection refused, timed out or aborted): is it "
                "running, and are its host, port and AE title right?"
            )
        raise DeliveryError(f"{destination} {why}")
    try:
        for ds in datasets:
            accepted = [
                UID(str(cx.transfer_syntax[0]))
                for cx in assoc.accepted_contexts
                if str(cx.abstract_syntax) == str(ds.SOPClassUID)
            ]
            if not accepted:
                raise DeliveryError(
                    f"{destination} does not accept {UID(str(ds.SOPClassUID)).name} objects; "
                    "allow that SOP class on the PACS"
                )
            target = _syntax(ds) if _syntax(ds) in accepted else accepted[0]
            status = assoc.send_c_store(_as_syntax(ds, target))
            code = int(getattr(status, "Status", -1)) if status else -1
            if code < 0 or not _stored(code):
                comment = str(getattr(status, "ErrorComment", "") or "") if status else ""
                shown = f"0x{code:04X}" if code >= 0 else "no response (connection lost)"
                raise DeliveryError(
                    f"{destination} refused {UID(str(ds.SOPClassUID)).name} "
                    f"{ds.SOPInstanceUID}: status {shown}" + (f" ({comment})" if comment else "")
                )
    finally:
        if assoc.is_established:
            assoc.release()


def send_stow(
    datasets: Sequence[Dataset], destination: StowDestination, timeout_s: float = 30.0
) -> None:
    """STOW-RS every dataset (``POST {url}/studies``); DeliveryError unless all are stored."""
    import requests  # dicomweb-client's transport
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(destination.url, timeout=timeout_s)
    try:
        response = client.store_instances(list(datasets))
    except requests.HTTPError as exc:
        raise DeliveryError(f"{destination} refused the results: {exc}") from None
    except requests.ConnectionError:
        raise DeliveryError(
            f"{destination} could not be reached (connection refused or timed out): is the "
            "DICOMweb server running, and is the URL right?"
        ) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"{destination} could not be reached ({type(exc).__name__})") from None
    except (ValueError, KeyError, TypeError) as exc:  # a body that is not DICOM JSON
        raise DeliveryError(
            f"{destination} answered with something that is not a STOW-RS response "
            f"({type(exc).__name__}); is the URL the DICOMweb root?"
        ) from None
    failed = response.get("FailedSOPSequence") if response is not None else None
    if failed:
        reasons = ", ".join(str(item.get("FailureReason", "?")) for item in failed)
        raise DeliveryError(f"{destination} did not store {len(failed)} object(s): {reasons}")
    # success needs the server's own list of what it stored: an HTML login page or an
    # empty 200 from a proxy in front of the PACS is not a STOW-RS answer
    referenced = response.get("ReferencedSOPSequence") if response is not None else None
    stored = {str(item.get("ReferencedSOPInstanceUID", "")) for item in referenced or []}
    missing = [str(ds.SOPInstanceUID) for ds in datasets if str(ds.SOPInstanceUID) not in stored]
    if missing:
        raise DeliveryError(
            f"{destination} did not confirm storing {len(missing)} of {len(datasets)} object(s) "
            "(no ReferencedSOPSequence listing them in the STOW-RS response): is the URL the "
            "DICOMweb root, and is there a login page or proxy in front of it?"
        )


def send(datasets: Sequence[Dataset], destination: Destination, calling_ae: str) -> None:
    """Send `datasets` to `destination` by C-STORE or STOW-RS."""
    if isinstance(destination, DicomDestination):
        send_cstore(datasets, destination, calling_ae)
    else:
        send_stow(datasets, destination)
