"""The link store: round trip, nothing readable in the raw file, key handling."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pydicom
import pytest

from dxassist.privacy.deid import LinkRecord, deidentify
from dxassist.privacy.linkstore import (
    KEY_ENV,
    KEY_FILE,
    STORE_FILE,
    LinkKeyError,
    LinkStore,
    load_or_create_link_key,
)
from tests.privacy.phi import build_phi_instance, identity

SECRET = b"0123456789abcdef" * 4


@pytest.fixture
def records(rg1_uncr: Path) -> list[LinkRecord]:
    out = []
    for n in (0, 1):
        ds, _ = build_phi_instance(rg1_uncr, identity(n))
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(deidentify(pydicom.dcmread(io.BytesIO(buf.getvalue())), SECRET).record)
    return out


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_round_trip(tmp_path: Path, records: list[LinkRecord]) -> None:
    store = LinkStore.open(tmp_path)
    for record in records:
        store.put(record)
    first = records[0]
    originals = LinkStore.open(tmp_path).original_uids(first.pseudo_study_instance_uid)
    assert originals is not None
    assert originals.study_instance_uid == first.study_instance_uid
    assert originals.patient_id == first.patient_id
    assert originals.patient_name == "PHIPATIENT^Wei=王^小东"
    assert originals.accession_number == first.accession_number
    for record in records:  # every instance's UIDs map back
        assert originals.uids[record.pseudo_sop_instance_uid] == record.sop_instance_uid
        assert originals.uids[record.pseudo_series_instance_uid] == record.series_instance_uid
    assert store.original_uids("2.25.1234") is None


def test_raw_file_shows_no_identifier(tmp_path: Path, records: list[LinkRecord]) -> None:
    store = LinkStore.open(tmp_path)
    for record in records:
        store.put(record)
    raw = (tmp_path / STORE_FILE).read_bytes()
    assert len(raw) > 1000
    first = records[0]
    secrets_in_file = [
        first.patient_id,
        first.study_instance_uid,
        first.series_instance_uid,
        first.sop_instance_uid,
        first.accession_number,
        first.pseudo_study_instance_uid,
        first.pseudo_patient_id,
        "PHIPATIENT",
    ]
    for value in secrets_in_file:
        assert value is not None
        assert value.encode() not in raw, value
    for encoding in ("utf-8", "gb18030"):  # long enough not to occur in ciphertext by chance
        assert "王^小东".encode(encoding) not in raw
    assert stat.S_IMODE(os.stat(tmp_path / STORE_FILE).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode) == 0o600


def test_wrong_key_cannot_read(tmp_path: Path, records: list[LinkRecord]) -> None:
    LinkStore.open(tmp_path).put(records[0])
    (tmp_path / KEY_FILE).write_text("ab" * 32 + "\n")
    with pytest.raises(LinkKeyError, match="cannot be decrypted"):
        LinkStore.open(tmp_path).original_uids(records[0].pseudo_study_instance_uid)


def test_key_from_environment(
    tmp_path: Path, records: list[LinkRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "cd" * 32)
    assert load_or_create_link_key(tmp_path) == bytes.fromhex("cd" * 32)
    LinkStore.open(tmp_path).put(records[0])
    assert not (tmp_path / KEY_FILE).exists()
    assert LinkStore.open(tmp_path).original_uids(records[0].pseudo_study_instance_uid)
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(LinkKeyError, match="64 hex digits"):
        load_or_create_link_key(tmp_path)


def test_key_is_made_once(tmp_path: Path) -> None:
    assert load_or_create_link_key(tmp_path) == load_or_create_link_key(tmp_path)
    assert len(load_or_create_link_key(tmp_path)) == 32
