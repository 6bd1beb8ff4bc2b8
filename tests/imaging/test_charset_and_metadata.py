"""Patient names in every character set hospitals use, and the other metadata fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dxassist.imaging import load_file
from dxassist.imaging.charset import decode_text, parse_character_set
from dxassist.imaging.dicom import parse_age

from .conftest import MakeDataset, write

ZHANG = "张^三"

# building malformed test headers makes pydicom warn; that is the point of those tests
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")


def _with_name(
    make_dataset: MakeDataset,
    crop_stored: np.ndarray,
    charset: str | list[str] | None,
    raw_name: bytes,
    **elements: object,
) -> Dataset:
    small = crop_stored[:64, :64].copy()  # the name is what matters here
    ds = make_dataset(small, WindowCenter=None, WindowWidth=None, **elements)
    if charset is None:
        del ds.SpecificCharacterSet
    else:
        ds.SpecificCharacterSet = charset
    ds["PatientName"] = DataElement(0x00100010, "PN", raw_name)
    return ds


def _gbk_char_with_backslash_trail() -> str:
    """A Chinese character whose GBK encoding ends with 0x5C, the DICOM value delimiter."""
    for code in range(0x4E00, 0x9FA5):
        char = chr(code)
        try:
            encoded = char.encode("gbk")
        except UnicodeEncodeError:
            continue
        if len(encoded) == 2 and encoded[1] == 0x5C:
            return char
    raise AssertionError("no such character")


BACKSLASH_CHAR = _gbk_char_with_backslash_trail()

DECLARED_AND_CORRECT = [
    pytest.param("ISO_IR 192", ZHANG.encode("utf-8"), ZHANG, id="utf-8"),
    pytest.param("GB18030", ZHANG.encode("gb18030"), ZHANG, id="gb18030"),
    pytest.param("GBK", ZHANG.encode("gbk"), ZHANG, id="gbk"),
    pytest.param(
        "GBK", f"王^{BACKSLASH_CHAR}".encode("gbk"), f"王^{BACKSLASH_CHAR}", id="gbk-5c-trail"
    ),
    pytest.param(
        ["", "ISO 2022 IR 58"],
        b"Zhang^San=\x1b$)A" + "张".encode("gb2312") + b"^\x1b$)A" + "三".encode("gb2312") + b"=",
        "Zhang^San=张^三=",
        id="iso2022-ir58",
    ),
    pytest.param(
        ["", "ISO 2022 IR 87"],
        b"Yamada^Tarou=" + "山田".encode("iso2022_jp") + b"^" + "太郎".encode("iso2022_jp") + b"=",
        "Yamada^Tarou=山田^太郎=",
        id="iso2022-ir87",
    ),
    pytest.param(
        ["", "ISO 2022 IR 149"],
        b"Hong^Gildong=\x1b$)C" + "洪".encode("euc_kr") + b"^\x1b$)C" + "吉洞".encode("euc_kr"),
        "Hong^Gildong=洪^吉洞",
        id="iso2022-ir149",
    ),
    pytest.param("ISO_IR 100", "Müller^Jörg".encode("latin-1"), "Müller^Jörg", id="latin-1"),
]


@pytest.mark.parametrize(("charset", "raw", "expected"), DECLARED_AND_CORRECT)
def test_name_in_declared_character_set(
    charset: str | list[str],
    raw: bytes,
    expected: str,
    make_dataset: MakeDataset,
    crop_stored: np.ndarray,
    tmp_path: Path,
) -> None:
    rg = load_file(write(_with_name(make_dataset, crop_stored, charset, raw), tmp_path / "n.dcm"))
    assert rg.meta.patient_name == expected
    assert rg.warnings == []
    assert rg.pixels.shape == (64, 64) and 0 <= rg.pixels.min() < rg.pixels.max() <= 1


MISLABELLED = [
    pytest.param(None, ZHANG.encode("gb18030"), "GB18030", id="missing-charset-gb18030"),
    pytest.param(None, ZHANG.encode("utf-8"), "UTF-8", id="missing-charset-utf8"),
    pytest.param("ISO_IR 100", ZHANG.encode("gb18030"), "GB18030", id="latin1-but-gb18030"),
    pytest.param("ISO_IR 192", ZHANG.encode("gb18030"), "GB18030", id="utf8-but-gb18030"),
    pytest.param("GB18030", ZHANG.encode("utf-8"), "UTF-8", id="gb18030-but-utf8"),
    pytest.param("ISO_IR 6", ZHANG.encode("gbk"), "GB18030", id="ascii-but-gbk"),
    pytest.param("CHINESE", ZHANG.encode("gb18030"), "GB18030", id="unknown-term"),
    pytest.param(
        ["", "ISO 2022 IR 58"],
        b"\x1b$)A" + ZHANG.encode("gb2312"),  # not re-escaped after the '^'
        "escape",
        id="iso2022-missing-escape-after-delimiter",
    ),
]


@pytest.mark.parametrize(("charset", "raw", "phrase"), MISLABELLED)
def test_mislabelled_name_decoded_with_warning(
    charset: str | list[str] | None,
    raw: bytes,
    phrase: str,
    make_dataset: MakeDataset,
    crop_stored: np.ndarray,
    tmp_path: Path,
) -> None:
    rg = load_file(write(_with_name(make_dataset, crop_stored, charset, raw), tmp_path / "n.dcm"))
    assert rg.meta.patient_name == ZHANG
    assert any("PatientName" in w and phrase in w for w in rg.warnings), rg.warnings


def test_undecodable_name_degrades_to_warning(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    raw = b"\xff\xfe\x80\x81\xff"  # valid in no multi-byte character set
    rg = load_file(write(_with_name(make_dataset, crop_stored, "ISO_IR 192", raw), tmp_path / "n"))
    assert rg.meta.patient_name is not None
    assert any("PatientName" in w and "may be wrong" in w for w in rg.warnings)
    assert rg.pixels.shape == (64, 64)


def test_chinese_manufacturer_and_id(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    ds = _with_name(make_dataset, crop_stored, "GB18030", ZHANG.encode("gb18030"))
    ds["Manufacturer"] = DataElement(0x00080070, "LO", "联影医疗".encode("gb18030"))
    ds["PatientID"] = DataElement(0x00100020, "LO", "门诊123".encode("gb18030"))
    rg = load_file(write(ds, tmp_path / "n.dcm"))
    assert (rg.meta.manufacturer, rg.meta.patient_id) == ("联影医疗", "门诊123")


def test_parse_character_set_terms() -> None:
    assert parse_character_set(b"ISO_IR 192").codecs == ("utf_8",)
    assert parse_character_set(b"\\ISO 2022 IR 58").codecs == ("ascii", "gb2312")
    assert parse_character_set(None).declared == ""
    fixed = parse_character_set(b"ISO IR 100")
    assert fixed.codecs == ("latin_1",) and "read as 'ISO_IR 100'" in fixed.problems[0]
    unknown = parse_character_set(b"KLINGON")
    assert unknown.codecs == ("ascii",) and "unknown" in unknown.problems[0]


def test_decode_text_never_raises_on_noise() -> None:
    rng = np.random.default_rng(0)
    charsets = [None, b"ISO_IR 192", b"GB18030", b"\\ISO 2022 IR 58", b"\\ISO 2022 IR 87"]
    for _ in range(300):
        raw = rng.integers(0, 256, rng.integers(1, 24), dtype=np.uint8).tobytes()
        for charset in charsets:
            text, notes = decode_text(raw, parse_character_set(charset), what="X")
            assert isinstance(text, str) and all(isinstance(n, str) for n in notes)


# --- other metadata ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "years", "warns"),
    [
        ("045Y", 45.0, False),
        ("006M", 0.5, False),
        ("010W", 70 / 365.25, False),
        ("003D", 3 / 365.25, False),
        ("81", 81.0, True),
        ("81Y", 81.0, True),
        (" 45 ", 45.0, True),
        ("abc", None, True),
        ("999", None, True),
        ("", None, False),
        (None, None, False),
    ],
)
def test_parse_age(value: str | None, years: float | None, warns: bool) -> None:
    got, note = parse_age(value)
    assert got == pytest.approx(years) if years is not None else got is None
    assert (note is not None) == warns


def test_header_fields(make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path) -> None:
    ds = make_dataset(
        crop_stored[:64, :64].copy(),
        PatientAge="045Y",
        ViewPosition="ap",
        BurnedInAnnotation="YES",
        PresentationIntentType="FOR PRESENTATION",
        PixelSpacing=[0.0, 0.0],
        ImagerPixelSpacing=[0.143, 0.139],
    )
    rg = load_file(write(ds, tmp_path / "h.dcm"))
    m = rg.meta
    assert m.patient_age_years == 45.0 and m.view_position == "AP" and not rg.is_lateral
    assert m.burned_in_annotation == "YES" and m.presentation_intent == "FOR PRESENTATION"
    assert m.pixel_spacing_mm == (0.143, 0.139)  # zero PixelSpacing -> ImagerPixelSpacing
    assert (m.rows, m.columns) == (64, 64) == rg.pixels.shape
    ds.PixelSpacing = [0.2, 0.25]
    ds.ViewPosition = "LL"
    rg = load_file(write(ds, tmp_path / "h2.dcm"))
    assert rg.meta.pixel_spacing_mm == (0.2, 0.25) and rg.is_lateral


def test_malformed_header_values_become_warnings(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    ds = make_dataset(
        crop_stored[:64, :64].copy(), PatientSex="X", PatientAge="old", PixelSpacing="1.5\\2.5"
    )
    path = write(ds, tmp_path / "m.dcm")
    path.write_bytes(path.read_bytes().replace(b"1.5\\2.5", b"abc\\def"))  # unparsable DS
    rg = load_file(path)
    assert rg.meta.patient_sex is None and rg.meta.patient_age_years is None
    assert rg.meta.pixel_spacing_mm is None
    assert any("PatientSex" in w for w in rg.warnings)
    assert any("PatientAge 'old'" in w for w in rg.warnings)
    assert rg.pixels.shape == (64, 64)
