"""De-identification of DICOM instances: PS3.15 Annex E, Basic Application Level
Confidentiality Profile, with the Clean Descriptors, Retain Longitudinal Temporal
Information with Modified Dates and Retain Patient Characteristics options.

Every attribute of Table E.1-1 (:mod:`dxassist.privacy.deid_table`, generated from the
standard's table) gets its action, at every nesting depth. What each action means here
(the standard leaves choices open; the reasons are in docs/deidentification.md, generated
from :func:`plan` so it cannot drift):

* ``X`` remove; ``Z`` empty value; ``D`` a dummy value of the right VR ("ANONYMIZED",
  19000101, 0, ...); ``U`` a keyed-hash UID ``2.25.<int>`` (HMAC-SHA-256 of the original
  UID with the site secret), so the same original UID always gets the same new one and
  references between objects stay consistent; ``K`` keep.
* Combined actions: ``X/Z`` empty (keeps the attribute for IODs where it is Type 2);
  ``Z/D`` dummy (Type 1 somewhere); ``X/D`` and ``X/Z/D`` remove (none is Type 1 in the
  radiograph IODs, which dciodvfy checks in the tests); ``X/Z/U*`` (Referenced Image /
  Source Image Sequence) keep the sequence and de-identify inside it, replacing its UIDs.
* Sequences: ``X``, ``X/D``, ``X/Z/D`` remove; ``Z``, ``X/Z``, ``D``, ``Z/D`` leave an
  empty sequence (a dummy item would need per-IOD content; no identifying item survives).
* Patient ID and Patient's Name (Z/D and Z; a dummy value is allowed) become the keyed
  pseudonym ``DX-`` + the first 16 hex digits of :func:`patient_key`, so the same patient
  gets the same pseudonym on every upload (nested Patient IDs too; a nested name: empty).
* Options: dates (DA, DT) of the table are shifted by a whole number of days derived from
  the patient's keyed hash (same patient, same shift); times (TM, the time in DT) are kept,
  as a whole-day shift does not change them. Patient's Age and Sex are kept (the reader
  uses them; Retain Patient Characteristics). A few descriptors are cleaned (only known
  radiography words survive, see :data:`CLEAN_DESCRIPTORS`); every other descriptor gets
  its Basic Profile action, which is stricter than cleaning.
* Not in the table: private attributes are removed (:data:`SAFE_PRIVATE_TAGS` is empty),
  group lengths are removed, other UIDs that are not DICOM-defined (``1.2.840.10008.*``)
  are replaced as ``U`` (stricter than the profile), sequences are de-identified inside,
  everything else (pixel data, Modality, View Position, Body Part Examined ...) is kept.
  The file preamble and the File Meta Information are rebuilt (the preamble and the
  source/sending AE titles can carry identifying data).

Values that are removed or replaced are never decoded, so any character set (GB18030, ISO
2022 IR 58 ...) is handled; text that is kept is written back as the bytes it came in.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dxassist.imaging.charset import CharacterSet, decode_text, parse_character_set
from dxassist.privacy.deid_table import BASIC_PROFILE, STANDARD_EDITION
from dxassist.privacy.pseudonym import patient_key

Op = Literal["keep", "remove", "empty", "dummy", "uid", "shift", "clean", "recurse", "pseudonym"]

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
PATIENT_BIRTH_DATE = 0x00100030
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
SOP_CLASS_UID = 0x00080016
ACCESSION = 0x00080050
SPECIFIC_CHARSET = 0x00080005

# Not identifiers but classes of objects: never replaced, whatever their root.
_CLASS_UID_TAGS = frozenset(
    {
        0x00020002,  # Media Storage SOP Class UID
        0x00020010,  # Transfer Syntax UID
        0x00041510,  # Referenced SOP Class UID in File
        0x00041512,  # Referenced Transfer Syntax UID in File
        0x00080016,  # SOP Class UID
        0x0008001A,  # Related General SOP Class UID
        0x0008001B,  # Original Specialized SOP Class UID
        0x00081150,  # Referenced SOP Class UID
        0x00000002,  # Affected SOP Class UID
        0x00000003,  # Requested SOP Class UID
    }
)
_DICOM_UID_ROOT = "1.2.840.10008."
# X/Z sequences that are Type 2 in a radiography IOD: emptied, not removed.
_TYPE2_SEQUENCES = frozenset({0x00400555})  # Acquisition Context Sequence (DX IOD)
# Not in the table but removed all the same (stricter than the profile), with the reason.
EXTRA_REMOVED: dict[int, str] = {
    0x04000500: "Encrypted Attributes Sequence: the originals, encrypted for someone else",
}
# Type 1C attributes left with a dummy whose condition the profile removes: (attribute,
# the attribute its presence requires).
_ORPHANS = (
    (0x00120081, 0x00120082),  # Ethics Committee Name needs the Approval Number (X)
)

# Retain Patient Characteristics Option (DCM 113108): the reader uses age and sex. The
# option would allow more (size, weight, ...); we keep only what is used.
PATIENT_CHARACTERISTICS = frozenset({0x00101010, 0x00100040})  # Patient's Age, Sex

# Clean Descriptors Option (DCM 113105): these descriptors (all marked C in that column of
# Table E.1-1) are cleaned; every other descriptor gets its Basic Profile action.
CLEAN_DESCRIPTORS = frozenset(
    {
        0x00081030,  # Study Description
        0x0008103E,  # Series Description
        0x00082111,  # Derivation Description
        0x00181030,  # Protocol Name
        0x00181400,  # Acquisition Device Processing Description
        0x00189424,  # Acquisition Protocol Description
        0x00204000,  # Image Comments
        0x00321060,  # Requested Procedure Description
        0x00400254,  # Performed Procedure Step Description
    }
)

# Cleaning keeps a descriptor only if every word of it is one of these (radiography
# words, no names, numbers or places); the value becomes the words' English forms, so it
# is ASCII whatever the character set. Otherwise the Basic Profile action applies.
CLEAN_WORDS: dict[str, str] = {
    **{
        w: w
        for w in [
            "CHEST",
            "THORAX",
            "LUNG",
            "LUNGS",
            "RIB",
            "RIBS",
            "HEART",
            "ABDOMEN",
            "SPINE",
            "XR",
            "X",
            "RAY",
            "XRAY",
            "CR",
            "DX",
            "DR",
            "RADIOGRAPH",
            "RADIOGRAPHY",
            "FILM",
            "PLAIN",
            "IMAGE",
            "VIEW",
            "VIEWS",
            "PA",
            "AP",
            "LAT",
            "LATERAL",
            "LL",
            "RL",
            "FRONTAL",
            "PORTABLE",
            "BEDSIDE",
            "ERECT",
            "UPRIGHT",
            "SUPINE",
            "SEMI",
            "DECUBITUS",
            "STANDING",
            "SITTING",
            "INSPIRATION",
            "EXPIRATION",
            "LEFT",
            "RIGHT",
            "AND",
            "WITH",
            "OF",
            "ROUTINE",
            "FOR",
            "PROCESSING",
            "PRESENTATION",
            "ORIGINAL",
            "PRIMARY",
        ]
    },
    "胸部": "CHEST",
    "胸片": "CHEST",
    "胸": "CHEST",
    "正位": "FRONTAL",
    "侧位": "LATERAL",
    "正侧位": "FRONTAL LATERAL",
    "后前位": "PA",
    "前后位": "AP",
    "床旁": "BEDSIDE",
    "床边": "BEDSIDE",
    "平片": "PLAIN FILM",
    "摄影": "RADIOGRAPHY",
    "胸部正位": "CHEST FRONTAL",
    "胸部侧位": "CHEST LATERAL",
    "胸部正侧位": "CHEST FRONTAL LATERAL",
}
_WORD = re.compile(r"[A-Za-z]+|[0-9]+|[\u3400-\u9fff]+|[^\sA-Za-z0-9\u3400-\u9fff]")
_SEPARATORS = frozenset("-_/\\,.;:+&()^=")

# Private attributes kept by default: none. (A site that needs one, e.g. a vendor's
# exposure index, passes it as DeidOptions(safe_private=...) with a reason; the Retain Safe
# Private Option code 113111 is then declared in the output.)
SAFE_PRIVATE_TAGS: frozenset[tuple[int, str, int]] = frozenset()

_DATE_VRS = frozenset({"DA", "DT", "TM"})
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY: dict[str, Any] = {
    "AS": "000D",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "AT": 0,
}
# Date shift: back by 365 to 3650 days (1 to 10 years), whole days.
_SHIFT_MIN, _SHIFT_MAX = 365, 3650

_EXACT: dict[int, tuple[str, str]] = {
    tag: (action, name) for tag, mask, action, name in BASIC_PROFILE if mask == 0xFFFFFFFF
}
_MASKED: tuple[tuple[int, int, str, str], ...] = tuple(
    row for row in BASIC_PROFILE if row[1] != 0xFFFFFFFF
)


@dataclass(frozen=True)
class DeidOptions:
    """Which options of the profile are used (all are declared in the output)."""

    retain_modified_dates: bool = True  # Retain Longitudinal Temporal Info, Modified Dates
    clean_descriptors: bool = True  # Clean Descriptors
    retain_patient_characteristics: bool = True  # age and sex, which the reader uses
    # Retain Safe Private Option (113111) when not empty: (group, private creator, element
    # byte) of private attributes known to hold no identifying data. Default: none.
    safe_private: frozenset[tuple[int, str, int]] = frozenset()


@dataclass(frozen=True)
class LinkRecord:
    """Original -> pseudonymous identifiers of one instance, for the link store only."""

    patient_id: str | None
    pseudo_patient_id: str | None
    patient_name: str | None
    pseudo_patient_name: str | None
    study_instance_uid: str | None
    pseudo_study_instance_uid: str | None
    series_instance_uid: str | None
    pseudo_series_instance_uid: str | None
    sop_instance_uid: str | None
    pseudo_sop_instance_uid: str | None
    accession_number: str | None
    pseudo_accession_number: str | None
    date_shift_days: int | None
    uids: dict[str, str] = field(default_factory=dict)  # every original UID -> its pseudo

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LinkRecord:
        data = json.loads(text)
        return cls(**data)


@dataclass(frozen=True)
class Deidentified:
    """The de-identified dataset, the link record, and notes on values that could not be
    treated as planned (e.g. a date that could not be shifted and was emptied)."""

    dataset: Dataset
    record: LinkRecord
    notes: list[str]


def basic_action(tag: int) -> tuple[str, str] | None:
    """(Basic Profile action, attribute name) from Table E.1-1, or None if not listed."""
    found = _EXACT.get(tag)
    if found is not None:
        return found
    for row_tag, mask, action, name in _MASKED:
        if tag & mask == row_tag:
            return action, name
    return None


def plan(tag: int, vr: str, options: DeidOptions, *, top_level: bool = True) -> tuple[Op, str]:
    """What is done to an attribute with this tag and VR, and why (one short phrase)."""
    rule = basic_action(tag)
    if tag == PATIENT_ID or (tag == PATIENT_NAME and top_level):
        return "pseudonym", "keyed-hash pseudonym (a dummy value, allowed by Z and Z/D)"
    if rule is None:
        if tag in EXTRA_REMOVED:
            return "remove", EXTRA_REMOVED[tag]
        if BaseTag(tag).is_private:
            return "remove", "private attribute (no safe private attributes)"
        if tag & 0xFFFF == 0:
            return "remove", "group length (obsolete, would be wrong after the changes)"
        if vr == "UI" and tag not in _CLASS_UID_TAGS:
            return "uid", "UID not in the table: replaced unless DICOM-defined (stricter)"
        if vr == "SQ":
            return "recurse", "not in the table: kept, items de-identified"
        return "keep", "not in the table"
    action, _ = rule
    if options.retain_patient_characteristics and tag in PATIENT_CHARACTERISTICS:
        return "keep", "Retain Patient Characteristics Option (K); the reader uses it"
    if options.clean_descriptors and tag in CLEAN_DESCRIPTORS:
        return "clean", "Clean Descriptors Option (C): radiography words only, else " + (
            plan(tag, vr, replace(options, clean_descriptors=False))[0]
        )
    if options.retain_modified_dates and vr in _DATE_VRS and tag != PATIENT_BIRTH_DATE:
        if vr == "TM":
            return "keep", "Retain Longitudinal Modified Dates (C): a whole-day shift keeps times"
        return "shift", "Retain Longitudinal Modified Dates (C): shifted by the patient's days"
    if vr == "SQ":
        if action == "X/Z/U*":
            return "recurse", "kept, items de-identified, UIDs replaced (U*)"
        if action == "X/Z" and tag in _TYPE2_SEQUENCES:
            return "empty", "X/Z: empty sequence (Type 2 in the DX IOD)"
        if action in ("X", "X/Z", "X/D", "X/Z/D"):
            return "remove", action + (
                " (an empty sequence is an error where Type 3)" * (action == "X/Z")
            )
        return "empty", f"{action}: empty sequence" + (" (no dummy item)" if "D" in action else "")
    if action == "U":
        return "uid", "U: keyed-hash UID"
    if action in ("X", "X/D", "X/Z/D", "X/Z/U*"):
        return "remove", action
    if action in ("Z", "X/Z"):
        return "empty", action
    if action in ("D", "Z/D"):
        return "dummy", action
    if action == "K":
        return "keep", action
    if action == "C":
        return "clean", action
    raise ValueError(f"unknown action {action!r} for ({tag >> 16:04X},{tag & 0xFFFF:04X})")


def pseudo_uid(uid: str, secret: bytes) -> str:
    """``2.25.<int>`` from the first 128 bits of HMAC-SHA-256(secret, uid): at most 44
    characters, the same for the same UID and secret, not reversible without the secret."""
    digest = hmac.new(secret, b"dxassist-uid\x00" + uid.encode("ascii"), hashlib.sha256)
    return "2.25." + str(int.from_bytes(digest.digest()[:16], "big"))


def pseudo_patient_id(patient_id: str | None, secret: bytes) -> str | None:
    """``DX-`` + the first 16 hex digits of :func:`patient_key`; None for a blank ID."""
    key = patient_key(patient_id, secret)
    return None if key is None else "DX-" + key[:16]


def date_shift_days(basis: str, secret: bytes) -> int:
    """Days to add to every date of a patient (negative: 1 to 10 years back)."""
    digest = hmac.new(secret, b"dxassist-date-shift\x00" + basis.encode("utf-8"), hashlib.sha256)
    span = _SHIFT_MAX - _SHIFT_MIN + 1
    return -(_SHIFT_MIN + int.from_bytes(digest.digest()[:8], "big") % span)


def method_codes(options: DeidOptions) -> list[tuple[str, str]]:
    """(code value, meaning) of DCM codes for the profile and the options used."""
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if options.clean_descriptors:
        codes.append(("113105", "Clean Descriptors Option"))
    if options.retain_modified_dates:
        codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
    if options.retain_patient_characteristics:
        codes.append(("113108", "Retain Patient Characteristics Option"))
    if options.safe_private:
        codes.append(("113111", "Retain Safe Private Option"))
    return codes


def dictionary_vr(tag: int) -> str:
    """The VR of a tag from the data dictionary; UN if unknown or ambiguous ("US or SS")."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return "UN" if " or " in vr else vr


def _vr_of(elem: DataElement | RawDataElement, tag: int) -> str:
    vr = elem.VR
    if vr is None:
        return dictionary_vr(tag)
    return "UN" if " or " in vr else vr


def _raw_bytes(elem: DataElement | RawDataElement) -> bytes | None:
    value = elem.value
    return value if isinstance(value, bytes) else None


def _text(elem: DataElement | RawDataElement, charset: CharacterSet, what: str) -> str:
    raw = _raw_bytes(elem)
    if raw is not None:
        text, _ = decode_text(raw, charset, what=what, person_name=elem.VR == "PN")
        return text.strip(" \x00")
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value).strip(" \x00")  # str, PersonName, DA ...


def _uid_values(elem: DataElement | RawDataElement) -> list[str]:
    raw = _raw_bytes(elem)
    if raw is not None:
        text = raw.decode("ascii", "replace")
    elif elem.value is None:
        return []
    elif isinstance(elem.value, MultiValue | list | tuple):
        text = "\\".join(str(v) for v in elem.value)
    else:
        text = str(elem.value)
    return [v.strip(" \x00") for v in text.split("\\") if v.strip(" \x00")]


def _clean_descriptor(text: str) -> str | None:
    words: list[str] = []
    for token in _WORD.findall(text):
        if token in _SEPARATORS:
            continue
        cleaned = CLEAN_WORDS.get(token.upper())
        if cleaned is None:
            return None
        words.extend(cleaned.split())
    return " ".join(words) or None


def _shift_date(value: str, days: int, vr: str) -> str | None:
    """A DA or DT value (possibly multi-valued) moved by `days`, or None if not a full date."""
    out = []
    for part in value.split("\\"):
        part = part.strip(" \x00")
        if len(part) < 8 or not part[:8].isdigit():
            return None
        try:
            day = dt.datetime.strptime(part[:8], "%Y%m%d").date()
        except ValueError:
            return None
        moved = day + dt.timedelta(days=days)
        if moved.year < 1:
            return None
        rest = part[8:] if vr == "DT" else ""
        if vr == "DA" and len(part) != 8:
            return None
        out.append(moved.strftime("%Y%m%d").rjust(8, "0") + rest)
    return "\\".join(out)


class _Context:
    def __init__(self, secret: bytes, options: DeidOptions, shift: int | None) -> None:
        self.secret = secret
        self.options = options
        self.shift = shift
        self.uids: dict[str, str] = {}
        self.notes: list[str] = []
        self.pseudonym: str | None = None
        self.shifted = False

    def uid(self, original: str) -> str:
        new = self.uids.get(original)
        if new is None:
            new = self.uids[original] = pseudo_uid(original, self.secret)
        return new


def _name(tag: int) -> str:
    found = basic_action(tag)
    return found[1] if found else f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _charset_of(ds: Dataset, inherited: CharacterSet) -> CharacterSet:
    """The character set of `ds`: its own Specific Character Set, else the parent's."""
    elem = ds.get_item(SPECIFIC_CHARSET)
    if elem is None:
        return inherited
    raw = _raw_bytes(elem)
    return parse_character_set(raw if raw is not None else elem.value)


def _safe_private(ds: Dataset, tag: int, safe: frozenset[tuple[int, str, int]]) -> bool:
    """Whether a private attribute (or the private creator of one) is on the safe list."""
    group, element = tag >> 16, tag & 0xFFFF
    if 0x0010 <= element <= 0x00FF:
        creator_tag, low = tag, None
    elif element >= 0x1000:
        creator_tag, low = (group << 16) | (element >> 8), element & 0xFF
    else:
        return False
    creator_elem = ds.get_item(creator_tag)
    if creator_elem is None:
        return False
    raw = _raw_bytes(creator_elem)
    value = raw.decode("latin-1") if raw is not None else str(creator_elem.value)
    creator = value.strip(" \x00")
    if low is None:
        return any(g == group and c == creator for g, c, _e in safe)
    return (group, creator, low) in safe


def _apply(ds: Dataset, ctx: _Context, charset: CharacterSet, top_level: bool) -> None:
    charset = _charset_of(ds, charset)
    for key in list(ds.keys()):
        tag = int(key)
        elem = ds.get_item(tag)
        if elem is None:
            continue
        safe = ctx.options.safe_private
        if safe and BaseTag(tag).is_private and _safe_private(ds, tag, safe):
            continue  # Retain Safe Private Option: kept as it is
        vr = _vr_of(elem, tag)
        op, _ = plan(tag, vr, ctx.options, top_level=top_level)
        _do(ds, tag, vr, op, elem, ctx, charset, top_level)


def _set(ds: Dataset, tag: int, vr: str, value: Any) -> None:
    ds[tag] = DataElement(tag, vr, value)


def _dummy(
    ds: Dataset, tag: int, vr: str, elem: DataElement | RawDataElement, ctx: _Context
) -> None:
    if vr == "UI":  # a UID with D: like U, so that references stay consistent
        values = [ctx.uid(v) for v in _uid_values(elem)] or [pseudo_uid(f"{tag:08X}", ctx.secret)]
        _set(ds, tag, vr, values[0] if len(values) == 1 else values)
    elif vr in _TEXT_VRS:
        _set(ds, tag, vr, _DUMMY_TEXT)
    elif vr in _BINARY_VRS:
        _set(ds, tag, vr, b"\x00" * {"OD": 8, "OV": 8, "OF": 4, "OL": 4}.get(vr, 2))
    elif vr in _DUMMY:
        _set(ds, tag, vr, _DUMMY[vr])
    elif vr == "SQ":
        _set(ds, tag, vr, Sequence([]))
    else:  # binary numbers
        _set(ds, tag, vr, 0)


def _do(
    ds: Dataset,
    tag: int,
    vr: str,
    op: Op,
    elem: DataElement | RawDataElement,
    ctx: _Context,
    charset: CharacterSet,
    top_level: bool,
) -> None:
    if op == "keep":
        return
    if op == "remove":
        del ds[tag]
    elif op == "empty":
        _set(ds, tag, vr, Sequence([]) if vr == "SQ" else None)
    elif op == "dummy":
        _dummy(ds, tag, vr, elem, ctx)
    elif op == "uid":
        values = _uid_values(elem)
        if tag not in _EXACT and all(v.startswith(_DICOM_UID_ROOT) for v in values):
            return  # a DICOM-defined UID outside the table (a coding scheme, a context)
        new = [ctx.uid(v) for v in values]
        _set(ds, tag, "UI", new[0] if len(new) == 1 else (new or None))
    elif op == "pseudonym":
        if tag == PATIENT_ID and not top_level:
            _set(ds, tag, vr, pseudo_patient_id(_text(elem, charset, "Patient ID"), ctx.secret))
        else:
            _set(ds, tag, vr, ctx.pseudonym)
    elif op == "recurse":
        try:
            items = ds[tag].value
        except Exception:  # a sequence pydicom cannot parse: nothing of it is kept
            ctx.notes.append(f"{_name(tag)}: sequence could not be read; removed")
            del ds[tag]
            return
        for item in items:
            _apply(item, ctx, charset, top_level=False)
    elif op == "clean":
        cleaned = _clean_descriptor(_text(elem, charset, _name(tag)))
        if cleaned is None:
            fallback = replace(ctx.options, clean_descriptors=False)
            _do(ds, tag, vr, plan(tag, vr, fallback)[0], elem, ctx, charset, top_level)
        else:
            _set(ds, tag, vr, cleaned)
    elif op == "shift":
        value = _text(elem, charset, _name(tag))
        moved = None if ctx.shift is None or not value else _shift_date(value, ctx.shift, vr)
        if moved is None:
            fallback = replace(ctx.options, retain_modified_dates=False)
            if value:
                ctx.notes.append(f"{_name(tag)}: {vr} value is not a full date; not kept")
            _do(ds, tag, vr, plan(tag, vr, fallback)[0], elem, ctx, charset, top_level)
        else:
            ctx.shifted = True
            _set(ds, tag, vr, moved)


def _drop_overlays_without_data(ds: Dataset) -> None:
    """An overlay plane (group 60xx) whose Overlay Data the profile removed: the rest of
    the group goes too (a plane without data is an invalid Overlay Plane module)."""
    groups = {int(t) >> 16 for t in list(ds.keys()) if 0x6000 <= int(t) >> 16 <= 0x601E}
    for group in groups:
        if group % 2 == 0 and (group << 16 | 0x3000) not in ds:
            for key in [t for t in list(ds.keys()) if int(t) >> 16 == group]:
                del ds[key]


def _top_text(ds: Dataset, tag: int, charset: CharacterSet, what: str) -> str | None:
    elem = ds.get_item(tag)
    if elem is None:
        return None
    text = _text(elem, charset, what)
    return text or None


def deidentify(source: Dataset, secret: bytes, options: DeidOptions | None = None) -> Deidentified:
    """De-identify a copy of `source` (which is not changed) with the site's `secret`."""
    options = options or DeidOptions()
    ds = copy.deepcopy(source)
    charset = _charset_of(ds, parse_character_set(None))
    patient_id = _top_text(ds, PATIENT_ID, charset, "Patient ID")
    patient_name = _top_text(ds, PATIENT_NAME, charset, "Patient's Name")
    study = _top_text(ds, STUDY_UID, charset, "Study Instance UID")
    series = _top_text(ds, SERIES_UID, charset, "Series Instance UID")
    sop = _top_text(ds, SOP_UID, charset, "SOP Instance UID")
    accession = _top_text(ds, ACCESSION, charset, "Accession Number")
    basis = patient_key(patient_id, secret) or (f"study:{study}" if study else None)
    shift = date_shift_days(basis, secret) if options.retain_modified_dates and basis else None

    ctx = _Context(secret, options, shift)
    ctx.pseudonym = pseudo_patient_id(patient_id, secret)
    _apply(ds, ctx, charset, top_level=True)

    for orphan, needs in _ORPHANS:
        if orphan in ds and needs not in ds:
            del ds[orphan]
    _drop_overlays_without_data(ds)
    ds.PatientIdentityRemoved = "YES"
    codes = method_codes(options)
    ds.DeidentificationMethod = [f"{STANDARD_EDITION} Annex E", *(m for _, m in codes[1:])]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if ctx.shifted else "REMOVED"

    meta = FileMetaDataset()
    old_meta = getattr(source, "file_meta", None)
    if SOP_CLASS_UID in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if SOP_UID in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if old_meta is not None and "TransferSyntaxUID" in old_meta:
        meta.TransferSyntaxUID = old_meta.TransferSyntaxUID
    else:  # no File Meta (a dataset from the network): the encoding it was read with
        implicit, little = getattr(source, "original_encoding", (None, None))
        if little and implicit is not None:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128

    record = LinkRecord(
        patient_id=patient_id,
        pseudo_patient_id=ctx.pseudonym,
        patient_name=patient_name,
        pseudo_patient_name=ctx.pseudonym if patient_name is not None else None,
        study_instance_uid=study,
        pseudo_study_instance_uid=ctx.uids.get(study) if study else None,
        series_instance_uid=series,
        pseudo_series_instance_uid=ctx.uids.get(series) if series else None,
        sop_instance_uid=sop,
        pseudo_sop_instance_uid=ctx.uids.get(sop) if sop else None,
        accession_number=accession,
        pseudo_accession_number=None,
        date_shift_days=shift if ctx.shifted else None,
        uids=dict(ctx.uids),
    )
    return Deidentified(ds, record, ctx.notes)
