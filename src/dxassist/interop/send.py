"""Sending DICOM objects to a destination: C-STORE (pynetdicom) or STOW-RS (dicomweb-client).

C-STORE proposes, for each SOP class, the object's own transfer syntax and the two
uncompressed ones; when the peer accepts only uncompressed, a compressed object is
decoded and sent uncompressed (a PACS that refuses JPEG 2000 still gets the result).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context

from dxassist.config import Destination, DicomDestination, StowDestination
from dxassist.errors import DxAssistError

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
#: C-STORE response statuses that mean "stored" (success, and the B000-B007 warnings).
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


class DeliveryError(DxAssistError):
    """The destination did not take the results; the message says why (retried later)."""


def _syntax(ds: Dataset) -> UID:
    return UID(str(ds.file_meta.TransferSyntaxUID))


def _as_syntax(ds: Dataset, target: UID) -> Dataset:
    """`ds` in transfer syntax `target` (decompressing a compressed one if needed)."""
    if _syntax(ds) == target:
        return ds
    out = copy.deepcopy(ds)
    if out.file_meta.TransferSyntaxUID.is_compressed:
        out.decompress()  # to Explicit VR Little Endian
    out.file_meta.TransferSyntaxUID = target
    return out


def send_cstore(
    datasets: Sequence[Dataset],
    destination: DicomDestination,
    calling_ae: str,
    timeout_s: float = 30.0,
) -> None:
    """C-STORE every dataset in one association; DeliveryError unless all are stored."""
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = timeout_s
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
            if code not in STORED_STATUSES:
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
    except requests.RequestException as exc:
        raise DeliveryError(f"{destination} could not be reached: {exc}") from None
    failed = response.get("FailedSOPSequence") if response is not None else None
    if failed:
        reasons = ", ".join(str(item.get("FailureReason", "?")) for item in failed)
        raise DeliveryError(f"{destination} did not store {len(failed)} object(s): {reasons}")


def send(datasets: Sequence[Dataset], destination: Destination, calling_ae: str) -> None:
    """Send `datasets` to `destination` by C-STORE or STOW-RS."""
    if isinstance(destination, DicomDestination):
        send_cstore(datasets, destination, calling_ae)
    else:
        send_stow(datasets, destination)
