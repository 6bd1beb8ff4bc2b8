"""A chest CR full of planted identifiers, for de-identification sweeps.

:func:`build_phi_instance` takes the real CR (pydicom-data RG1_UNCR.dcm) and fills every
attribute of Table E.1-1 that is not structural with a distinctive value (names in
Chinese in GB18030 or ISO 2022 IR 58, IDs, dates, addresses, UIDs), adds private
attributes and nested sequences with identifiers and UID references, and returns the
dataset with the list of planted values, each with the byte strings it can be found as
in any encoding the file uses. Also meant for the end-to-end PHI sweep (upload, C-STORE).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dxassist.privacy.deid_table import BASIC_PROFILE

CHINESE_NAME = "王^小东"  # family^given
CHINESE_TEXT = "王小东北京协和医院"  # a name and a hospital
CR_CLASS = "1.2.840.10008.5.1.4.1.1.1"
UID_ROOT = "1.2.826.0.1.3680043.10.999."
FIRST_DATE = dt.date(2041, 3, 1)  # planted dates lie within 300 days of this one

# Set by the builder itself (identity of the instance) or structural for the file.
_SKIP_GROUPS = (0x0000, 0x0002, 0x0004)


@dataclass(frozen=True)
class Planted:
    """One planted value: where, what, and the byte strings that would betray it."""

    name: str  # attribute name, with the path for nested ones
    tag: int
    vr: str
    text: str
    needles: tuple[bytes, ...]


@dataclass(frozen=True)
class Identity:
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    other_sop_uid: str  # the other instance of the study, referenced from this one
    frame_uid: str


def identity(n: int, *, patient: str = "PHIPID-4711-ZW") -> Identity:
    """Identifiers of instance `n` of one study (same study, series and frame of reference)."""
    return Identity(
        patient_id=patient,
        study_uid=UID_ROOT + "1.1",
        series_uid=UID_ROOT + "1.2",
        sop_uid=UID_ROOT + f"1.3.{n}",
        other_sop_uid=UID_ROOT + f"1.3.{1 - n}",
        frame_uid=UID_ROOT + "1.4",
    )


class _Encoder:
    def __init__(self, charset: str) -> None:
        self.charset = charset

    def cjk(self, text: str) -> bytes:
        if self.charset == "GB18030":
            return text.encode("gb18030")
        return b"\x1b$)A" + text.encode("gb2312")  # ISO 2022 IR 58: G1 designation, GR bytes

    def needles(self, text: str) -> tuple[bytes, ...]:
        """The byte strings a value (or its Chinese part) shows up as, in any encoding."""
        found = {text.encode("utf-8")}
        ascii_part = "".join(c if ord(c) < 128 else " " for c in text).split()
        found.update(p.encode() for p in ascii_part if len(p) >= 6)
        at = [i for i, c in enumerate(text) if ord(c) >= 0x3400]
        if at:  # the Chinese part as written ("王^小东"), and each run of 2+ characters
            parts = [text[at[0] : at[-1] + 1]]
            parts += [r for r in re.findall(r"[\u3400-\u9fff]{2,}", text) if r not in parts]
            for part in parts:
                found.update(part.encode(codec) for codec in ("gb18030", "gb2312", "utf-8"))
        if ascii_part == [text]:
            found = {text.encode("ascii")}
        return tuple(sorted(found))


def _date(i: int) -> str:
    return (FIRST_DATE + dt.timedelta(days=i % 300)).strftime("%Y%m%d")


def _value(i: int, vr: str, enc: _Encoder) -> tuple[object, str]:
    """(value to store, its text) for attribute number i of the table."""
    if vr == "AE":
        text = f"PHIAE{i:04d}"
    elif vr == "CS":
        text = f"PHICS{i:04d}"
    elif vr == "SH":
        text = f"PHISH{i:04d}"
    elif vr == "DA":
        text = _date(i)
    elif vr == "TM":
        text = f"2359{i % 60:02d}.9{i:05d}"
    elif vr == "DT":
        text = _date(i) + f"1011{i % 60:02d}.8{i:05d}"
    elif vr == "DS":
        text = f"{900000 + i}.5"
    elif vr == "IS":
        text = f"{800000000 + i}"
    elif vr == "UI":
        text = f"{UID_ROOT}{1000 + i}"
    elif vr == "UR":
        text = f"http://phi{i:04d}.example.org/patient"
    elif vr == "AS":
        text = "077W"  # Patient's Age itself is set to 045Y
    elif vr == "PN":
        text = f"PHIPN{i:04d}^Wei={CHINESE_NAME}"
        return b"PHIPN%04d^Wei=" % i + enc.cjk(CHINESE_NAME), text
    elif vr in ("LO", "LT", "ST", "UT", "UC"):
        text = f"PHI{vr}{i:04d} {CHINESE_TEXT}"
        return f"PHI{vr}{i:04d} ".encode() + enc.cjk(CHINESE_TEXT), text
    else:
        raise ValueError(vr)
    return text, text


_BINARY_LEN = {"OB": 2, "OW": 2, "UN": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _sequence_item(i: int, enc: _Encoder) -> Dataset:
    item = Dataset()
    item[0x0040A123] = DataElement(0x0040A123, "PN", b"PHISQPN%04d^X=" % i + enc.cjk("王^伟"))
    item.UID = f"{UID_ROOT}2{i:04d}"
    item.TextValue = f"PHISQTX{i:04d}"
    return item


def build_phi_instance(
    rg1: Path, who: Identity, *, charset: str = "GB18030"
) -> tuple[Dataset, list[Planted]]:
    """The real CR with every non-structural Basic Profile attribute planted (see module)."""
    if charset not in ("GB18030", "ISO 2022 IR 58"):
        raise ValueError(charset)
    enc = _Encoder(charset)
    ds = pydicom.dcmread(rg1)
    ds.SpecificCharacterSet = "GB18030" if charset == "GB18030" else ["", "ISO 2022 IR 58"]
    planted: list[Planted] = []
    fixed = {
        0x00100020: who.patient_id,
        0x0020000D: who.study_uid,
        0x0020000E: who.series_uid,
        0x00080018: who.sop_uid,
        0x00200052: who.frame_uid,
    }

    def plant(target: Dataset, tag: int, vr: str, value: object, text: str, name: str) -> None:
        target[tag] = DataElement(tag, vr, value)
        # an age (4 characters) is too short to search for in 7 MB of pixels: by value
        planted.append(Planted(name, tag, vr, text, () if vr == "AS" else enc.needles(text)))

    for i, (tag, mask, _action, name) in enumerate(BASIC_PROFILE):
        if tag >> 16 in _SKIP_GROUPS:
            continue
        if mask != 0xFFFFFFFF:  # repeating groups: curve 5000, overlay 6000
            tag = tag | 0x3000 if tag >> 24 == 0x50 else tag
        if tag in fixed:
            plant(ds, tag, dictionary_VR(tag), fixed[tag], fixed[tag], name)
            continue
        if tag == 0x00100010:
            raw = b"PHIPATIENT^Wei=" + enc.cjk(CHINESE_NAME)
            plant(ds, tag, "PN", raw, f"PHIPATIENT^Wei={CHINESE_NAME}", name)
            continue
        if tag == 0x00100040:
            ds.PatientSex = "F"  # kept by the option; one letter: checked by value
            planted.append(Planted(name, tag, "CS", "F", ()))
            continue
        if tag == 0x00101010:
            plant(ds, tag, "AS", "045Y", "045Y", name)
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        vr = vr.split(" or ")[-1]  # "OB or OW" -> OW, "US or SS" -> SS
        if tag == 0xFFFCFFFC:
            vr = "OB"
        if vr == "SQ":
            if tag in (0x00081140, 0x00082112):
                planted.append(Planted(name, tag, "SQ", "<references>", ()))
                continue  # the U* sequences get real references below
            ds[tag] = DataElement(tag, "SQ", Sequence([_sequence_item(i, enc)]))
            planted.append(Planted(name, tag, "SQ", "<1 item>", ()))
            item = ds[tag].value[0]
            for elem in item:
                text = str(elem.value) if elem.VR != "PN" else f"PHISQPN{i:04d}^X=王^伟"
                planted.append(
                    Planted(f"{name} > {elem.name}", elem.tag, elem.VR, text, enc.needles(text))
                )
        elif vr in _BINARY_LEN:
            raw = b"PHIBIN%04d" % i
            raw += b"\x00" * (-len(raw) % _BINARY_LEN[vr])
            plant(ds, tag, vr, raw, raw.rstrip(b"\x00").decode(), name)
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT"):
            ds[tag] = DataElement(tag, vr, 4321 if vr != "AT" else 0x43214321)
            planted.append(Planted(name, tag, vr, "4321", ()))  # numbers: checked by value
        else:
            value, text = _value(i, vr, enc)
            plant(ds, tag, vr, value, text, name)

    # Nested identifiers and references, three levels deep, and private attributes.
    ref = Dataset()
    ref.ReferencedSOPClassUID = CR_CLASS
    ref.ReferencedSOPInstanceUID = who.other_sop_uid
    purpose = Dataset()
    purpose.CodeValue = "121311"
    purpose.CodingSchemeDesignator = "DCM"
    purpose.CodeMeaning = "Localizer"
    deep = Dataset()
    deep[0x00100010] = DataElement(0x00100010, "PN", b"PHIDEEP^Name=" + enc.cjk(CHINESE_NAME))
    deep.PatientID = "PHIDEEPPID77"
    deep.StudyInstanceUID = who.study_uid
    deep[0x00080080] = DataElement(0x00080080, "LO", b"PHIDEEPINST " + enc.cjk(CHINESE_TEXT))
    deep.AccessionNumber = "PHIDEEPACC"
    deep.StudyDate = _date(7)
    deep.add_new(0x00190010, "LO", "PHI DEEP CREATOR")
    deep.add_new(0x00191001, "LO", "PHIDEEPPRIVATE")
    purpose.ReferencedImageSequence = Sequence([deep])  # non-table sequence of depth 3
    ref.PurposeOfReferenceCodeSequence = Sequence([purpose])
    ref.add_new(0x00290010, "LO", "PHI REF CREATOR")
    ref.add_new(0x00291001, "LO", "PHIREFPRIVATE")
    ds.ReferencedImageSequence = Sequence([ref])
    src = Dataset()
    src.ReferencedSOPClassUID = CR_CLASS
    src.ReferencedSOPInstanceUID = who.other_sop_uid
    ds.SourceImageSequence = Sequence([src])
    region = Dataset()
    region.CodeValue = "T-D3000"
    region.CodingSchemeDesignator = "SRT"
    region.CodeMeaning = "Chest"
    region.PatientID = "PHIREGIONPID"
    region.OtherPatientIDsSequence = Sequence([Dataset()])
    region.OtherPatientIDsSequence[0].PatientID = "PHIOTHERPID"
    ds.AnatomicRegionSequence = Sequence([region])
    ds.add_new(0x00090010, "LO", "PHI PRIVATE CREATOR")
    ds.add_new(0x00091001, "LO", "PHIPRIVATE0001")
    ds.add_new(0x00091002, "SQ", Sequence([Dataset()]))
    ds[0x00091002].value[0].add_new(0x00090010, "LO", "PHI PRIVATE NESTED")
    ds[0x00091002].value[0].add_new(0x00091001, "LO", "PHIPRIVATE0002")
    ds.add_new(0x00110010, "LO", "PHI OTHER CREATOR")
    ds.add_new(0x00111001, "UN", b"PHIUNKNOWN01")
    for text, tag in [
        ("PHIDEEP^Name=王^小东", 0x00100010),
        ("PHIDEEPPID77", 0x00100020),
        ("PHIDEEPINST 王小东北京协和医院", 0x00080080),
        ("PHIDEEPACC", 0x00080050),
        ("PHI DEEP CREATOR", 0x00190010),
        ("PHIDEEPPRIVATE", 0x00191001),
        ("PHI REF CREATOR", 0x00290010),
        ("PHIREFPRIVATE", 0x00291001),
        ("PHIREGIONPID", 0x00100020),
        ("PHIOTHERPID", 0x00100020),
        ("PHI PRIVATE CREATOR", 0x00090010),
        ("PHIPRIVATE0001", 0x00091001),
        ("PHI PRIVATE NESTED", 0x00090010),
        ("PHIPRIVATE0002", 0x00091001),
        ("PHI OTHER CREATOR", 0x00110010),
        ("PHIUNKNOWN01", 0x00111001),
    ]:
        planted.append(Planted(f"nested/private {text}", tag, "LO", text, enc.needles(text)))
    ds.file_meta.MediaStorageSOPInstanceUID = who.sop_uid
    ds.file_meta.SourceApplicationEntityTitle = "PHISOURCEAE"
    planted.append(Planted("Source AE Title", 0x00020016, "AE", "PHISOURCEAE", (b"PHISOURCEAE",)))
    ds.preamble = b"PHIPREAMBLE" + b"\x00" * 117
    planted.append(Planted("preamble", 0, "OB", "PHIPREAMBLE", (b"PHIPREAMBLE",)))
    return ds, planted
