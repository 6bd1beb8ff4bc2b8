"""Sending results: a PACS that accepts only uncompressed objects still gets them
(transcoded), a refusing PACS gives a DeliveryError that says why, back-off doubles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom import AE, evt
from pynetdicom.sop_class import ComputedRadiographyImageStorage  # type: ignore[attr-defined]

from dxassist.config import DicomDestination
from dxassist.interop.delivery import backoff
from dxassist.interop.send import DeliveryError, send_cstore


class Pacs:
    """A pynetdicom C-STORE SCP that keeps what it receives, answering `status`."""

    def __init__(self, syntaxes: list[str], status: int = 0x0000) -> None:
        self.received: list[pydicom.Dataset] = []
        self.status = status
        ae = AE(ae_title="PACS")
        ae.add_supported_context(ComputedRadiographyImageStorage, syntaxes)
        self.server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.port = int(self.server.server_address[1])

    def _store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        self.received.append(ds)
        return self.status


@pytest.fixture
def pacs_factory() -> Iterator[Any]:
    servers: list[Pacs] = []

    def make(syntaxes: list[str], status: int = 0) -> Pacs:
        p = Pacs(syntaxes, status)
        servers.append(p)
        return p

    yield make
    for p in servers:
        p.server.shutdown()


def test_jpeg2000_is_transcoded_for_a_pacs_that_takes_only_uncompressed(
    pacs_factory: Any, rg1_j2kr: Path, rg1_uncr: Path
) -> None:
    pacs = pacs_factory([ExplicitVRLittleEndian])
    j2k = pydicom.dcmread(rg1_j2kr)
    assert j2k.file_meta.TransferSyntaxUID == JPEG2000Lossless
    send_cstore([j2k], DicomDestination("PACS", "127.0.0.1", pacs.port), "DXASSIST")
    (got,) = pacs.received
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    # lossless: the pixels are the uncompressed file's, bit for bit
    assert np.array_equal(got.pixel_array, pydicom.dcmread(rg1_uncr).pixel_array)


def test_a_pacs_that_takes_jpeg2000_gets_it_as_it_is(pacs_factory: Any, rg1_j2kr: Path) -> None:
    pacs = pacs_factory([JPEG2000Lossless, ExplicitVRLittleEndian])
    send_cstore([pydicom.dcmread(rg1_j2kr)], DicomDestination("PACS", "127.0.0.1", pacs.port), "DX")
    assert pacs.received[0].file_meta.TransferSyntaxUID == JPEG2000Lossless


def test_refusals_say_what_went_wrong(pacs_factory: Any, rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    full = pacs_factory([ExplicitVRLittleEndian], status=0xA700)
    with pytest.raises(DeliveryError, match="status 0xA700"):
        send_cstore([ds], DicomDestination("PACS", "127.0.0.1", full.port), "DXASSIST")
    # a PACS that does not take this SOP class at all
    sr_only = pacs_factory([ExplicitVRLittleEndian])
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    with pytest.raises(DeliveryError, match="does not accept Comprehensive SR"):
        send_cstore([ds], DicomDestination("PACS", "127.0.0.1", sr_only.port), "DXASSIST")


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 15, 3600) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert backoff(30, 15, 3600) == 3600
