"""Decode DICOM text values whatever character set the sender used (or claimed to use).

Hospitals send names in UTF-8 (``ISO_IR 192``), ``GB18030``, ``GBK``, ISO 2022 with
escape sequences (``ISO 2022 IR 58`` for GB 2312, ``ISO 2022 IR 87`` for JIS X 0208,
``ISO 2022 IR 149`` for KS X 1001) and, often enough, with no or the wrong *Specific
Character Set*. :func:`decode_text` never raises: it decodes with the declared character
set when the bytes fit it, otherwise guesses (UTF-8, then GB18030) and says so in a
warning, and as a last resort replaces undecodable bytes and says so too.

pydicom's own decoding is not used for the value itself because it splits multi-valued
elements on the byte ``0x5C`` (which is a trail byte of many GBK/GB18030 characters)
and, in pydicom 3.0, leaves the ``ESC $ ) A`` designator of ISO 2022 IR 58 in the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# DICOM defined terms of (0008,0005) -> Python codec. Values with code extensions
# (ISO 2022 ...) are decoded fragment by fragment, see _ESCAPES.
_CODECS: dict[str, str] = {
    "ISO_IR 6": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 13": "shift_jis",
    "ISO_IR 166": "tis_620",
    "ISO_IR 192": "utf_8",
    "GB18030": "gb18030",
    "GBK": "gbk",
    "ISO 2022 IR 6": "ascii",
    "ISO 2022 IR 100": "latin_1",
    "ISO 2022 IR 101": "iso8859_2",
    "ISO 2022 IR 109": "iso8859_3",
    "ISO 2022 IR 110": "iso8859_4",
    "ISO 2022 IR 144": "iso8859_5",
    "ISO 2022 IR 127": "iso8859_6",
    "ISO 2022 IR 126": "iso8859_7",
    "ISO 2022 IR 138": "iso8859_8",
    "ISO 2022 IR 148": "iso8859_9",
    "ISO 2022 IR 203": "iso8859_15",
    "ISO 2022 IR 13": "shift_jis",
    "ISO 2022 IR 166": "tis_620",
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 149": "euc_kr",
    "ISO 2022 IR 58": "gb2312",
    "ISO 2022 GBK": "gbk",
    "ISO 2022 58": "gb2312",
}

# Non-standard spellings seen in the field -> the defined term they mean.
_ALIASES: dict[str, str] = {
    "UTF-8": "ISO_IR 192",
    "UTF8": "ISO_IR 192",
    "ISO-IR 192": "ISO_IR 192",
    "GB2312": "ISO 2022 IR 58",
    "GB 2312": "ISO 2022 IR 58",
    "ISO_IR 58": "ISO 2022 IR 58",
    "GB-18030": "GB18030",
    "GB 18030": "GB18030",
    "CP936": "GBK",
    "LATIN1": "ISO_IR 100",
    "LATIN-1": "ISO_IR 100",
}

# ISO 2022 escape sequences DICOM uses -> Python codec for the bytes that follow.
_ESCAPES: dict[bytes, str] = {
    b"\x1b(B": "ascii",
    b"\x1b-A": "latin_1",
    b"\x1b-B": "iso8859_2",
    b"\x1b-C": "iso8859_3",
    b"\x1b-D": "iso8859_4",
    b"\x1b-L": "iso8859_5",
    b"\x1b-G": "iso8859_6",
    b"\x1b-F": "iso8859_7",
    b"\x1b-H": "iso8859_8",
    b"\x1b-M": "iso8859_9",
    b"\x1b-b": "iso8859_15",
    b"\x1b-T": "tis_620",
    b"\x1b)I": "shift_jis",
    b"\x1b(J": "shift_jis",
    b"\x1b$B": "iso2022_jp",
    b"\x1b$(D": "iso2022_jp_2",
    b"\x1b$)C": "euc_kr",
    b"\x1b$)A": "gb2312",
}
# Codecs that understand their own escape sequences (the fragment is passed with them).
_SELF_ESCAPING = frozenset({"iso2022_jp", "iso2022_jp_2"})
# Codecs in which every byte sequence is valid: decoding with them proves nothing.
_SINGLE_BYTE = frozenset(
    {
        "latin_1",
        "iso8859_2",
        "iso8859_3",
        "iso8859_4",
        "iso8859_5",
        "iso8859_6",
        "iso8859_7",
        "iso8859_8",
        "iso8859_9",
        "iso8859_15",
        "tis_620",
    }
)

#: bytes that reset ISO 2022 code extensions to the initial set (PS3.5 6.1.2.5.3)
PN_DELIMITERS = frozenset(b"^=\\\r\n\t\f")
TEXT_DELIMITERS = frozenset(b"\\\r\n\t\f")

_ESCAPE_RE = re.compile(rb"\x1b(?:\$[()]?|[()\-])[\x40-\x7e]")
_CJK_RE = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)


@dataclass(frozen=True)
class CharacterSet:
    """A parsed (0008,0005) *Specific Character Set*.

    Attributes
    ----------
    declared:
        The value as found in the file (``""`` when absent), for messages.
    codecs:
        Python codecs for each value, in order; the first is the initial set.
    iso2022:
        True if the value uses code extensions (escape sequences may occur).
    problems:
        Things wrong with the value itself (unknown or misspelled terms).
    """

    declared: str
    codecs: tuple[str, ...]
    iso2022: bool
    problems: tuple[str, ...] = field(default=())


def parse_character_set(raw: bytes | str | Sequence[str] | None) -> CharacterSet:
    """Parse a *Specific Character Set* value.

    Parameters
    ----------
    raw:
        The raw value bytes (``b"\\\\ISO 2022 IR 58"``), an already split list of
        terms, or ``None``/empty when the element is absent.

    Returns
    -------
    CharacterSet
        Codecs to try; an unknown term is reported in ``problems`` and skipped.
    """
    if raw is None:
        terms: list[str] = []
    elif isinstance(raw, bytes):
        terms = raw.decode("latin_1").split("\\")
    elif isinstance(raw, str):
        terms = raw.split("\\")
    else:
        terms = [str(t) for t in raw]
    terms = [t.strip(" \x00") for t in terms]
    declared = "\\".join(terms).strip("\\ ")
    if not any(terms):
        return CharacterSet(declared="", codecs=("ascii",), iso2022=False)
    problems: list[str] = []
    found: list[str] = []
    iso2022 = len(terms) > 1
    for i, term in enumerate(terms):
        if not term:
            if i == 0:
                found.append("ascii")  # empty first value means the default repertoire
            continue
        norm = re.sub(r"\s+", " ", term.upper())
        if norm not in _CODECS:
            fixed = _ALIASES.get(norm) or _ALIASES.get(norm.replace("_", " "))
            if fixed is None:
                candidate = re.sub(r"^ISO[ _-]?IR[ _-]?", "ISO_IR ", norm)
                candidate2 = re.sub(r"^ISO[ _-]?2022[ _-]?IR[ _-]?", "ISO 2022 IR ", norm)
                fixed = next((c for c in (candidate, candidate2) if c in _CODECS), None)
            if fixed is None:
                problems.append(f"unknown Specific Character Set term {term!r}")
                continue
            problems.append(f"non-standard Specific Character Set term {term!r} read as {fixed!r}")
            norm = fixed
        iso2022 = iso2022 or norm.startswith("ISO 2022")
        found.append(_CODECS[norm])
    if not found:
        found.append("ascii")
    return CharacterSet(
        declared=declared, codecs=tuple(found), iso2022=iso2022, problems=tuple(problems)
    )


def _decode_iso2022(raw: bytes, charset: CharacterSet, delimiters: frozenset[int]) -> str:
    """Decode `raw` that may contain ISO 2022 escape sequences.

    Raises ``UnicodeDecodeError`` if a run of bytes does not fit its character set.
    A delimiter in `delimiters` switches back to the initial character set.
    """
    initial = charset.codecs[0]
    out: list[str] = []
    codec, escape, pos = initial, b"", 0
    for match in [*_ESCAPE_RE.finditer(raw), None]:
        end = match.start() if match is not None else len(raw)
        chunk = raw[pos:end]
        if chunk:
            out.append(_decode_run(chunk, codec, escape, initial, delimiters))
        if match is None:
            break
        escape = match.group()
        found = _ESCAPES.get(escape)
        if found is None:
            raise UnicodeDecodeError(
                "iso2022", raw, match.start(), match.end(), "unknown escape sequence"
            )
        codec, pos = found, match.end()
    return "".join(out)


def _decode_run(
    chunk: bytes, codec: str, escape: bytes, initial: str, delimiters: frozenset[int]
) -> str:
    """Decode the bytes between two escape sequences."""
    if codec in _SELF_ESCAPING:
        return (escape + chunk).decode(codec)
    cut = next((i for i, b in enumerate(chunk) if b in delimiters), None)
    if cut is None or codec == initial:
        return chunk.decode(codec)
    return chunk[:cut].decode(codec) + chunk[cut:].decode(initial)


def _decode_declared(raw: bytes, charset: CharacterSet, delimiters: frozenset[int]) -> str:
    if charset.iso2022 or b"\x1b" in raw:
        return _decode_iso2022(raw, charset, delimiters)
    return raw.decode(charset.codecs[0])


def _plausible_gb(raw: bytes, text: str) -> bool:
    """True if `text` (GB18030-decoded `raw`) looks like Chinese, not like misread Latin."""
    non_ascii = [c for c in text if ord(c) > 0x7F]
    if not non_ascii or not all(_CJK_RE.fullmatch(c) for c in non_ascii):
        return False
    # Chinese characters are byte pairs >= 0x81; a lone high byte is a Latin letter.
    return all(len(run) % 2 == 0 for run in re.findall(rb"[\x80-\xff]+", raw))


def _is_gb2312(raw: bytes) -> bool:
    try:
        raw.decode("gb2312")
    except UnicodeDecodeError:
        return False
    return True


def _better_guess(raw: bytes, codec: str) -> tuple[str, str] | None:
    """Return ``(label, text)`` if `raw` clearly is not in `codec`, although it decodes.

    Single-byte sets decode anything, and GB18030 decodes most UTF-8; the usual
    mislabelling in hospitals is UTF-8 or GB bytes under ``ISO_IR 100`` or the reverse.
    """
    if codec == "utf_8":
        return None
    try:
        as_utf8 = raw.decode("utf_8")
    except UnicodeDecodeError:
        as_utf8 = None
    if codec in _SINGLE_BYTE:
        if as_utf8 is not None:
            return "UTF-8", as_utf8
        if codec == "latin_1" and _is_gb2312(raw):
            as_gb = raw.decode("gb18030")
            if _plausible_gb(raw, as_gb):
                return "GB18030", as_gb
        return None
    if (
        codec in {"gb18030", "gbk", "gb2312"}
        and as_utf8 is not None
        and _CJK_RE.search(as_utf8)
        and not _is_gb2312(raw)
    ):
        return "UTF-8", as_utf8
    return None


def _describe(charset: CharacterSet) -> str:
    if not charset.declared:
        return "the default character set (no Specific Character Set: ASCII only)"
    return f"Specific Character Set {charset.declared!r}"


def decode_text(
    raw: bytes, charset: CharacterSet, *, what: str, person_name: bool = False
) -> tuple[str, list[str]]:
    """Decode one text element value; never raises.

    Parameters
    ----------
    raw:
        The element's value bytes as stored in the file.
    charset:
        The dataset's character set, from :func:`parse_character_set`.
    what:
        Name of the element, used in warnings (e.g. ``"PatientName"``).
    person_name:
        True for PN values: ``^`` and ``=`` then also reset ISO 2022 code extensions.

    Returns
    -------
    tuple of (str, list of str)
        The text (trailing padding removed) and warnings for the user, empty when the
        bytes fit the declared character set.
    """
    raw = raw.rstrip(b" \x00")
    if raw.isascii() and b"\x1b" not in raw:
        return raw.decode("ascii"), []
    delimiters = PN_DELIMITERS if person_name else TEXT_DELIMITERS
    declared = _describe(charset)
    try:
        text = _decode_declared(raw, charset, delimiters)
    except (UnicodeDecodeError, LookupError):
        pass
    else:
        guess = _better_guess(raw, charset.codecs[0]) if not charset.iso2022 else None
        if guess is None:
            return text, []
        label, better = guess
        return better, [
            f"{what}: the bytes do not read as text with {declared}, but they are valid "
            f"{label}; used {label} - check the name and fix the sender's "
            "character set setting"
        ]
    if charset.iso2022:
        try:
            text = _decode_iso2022(raw, charset, frozenset())
        except (UnicodeDecodeError, LookupError):
            pass
        else:
            return text, [
                f"{what}: ISO 2022 escape sequence not repeated after a delimiter "
                f"(with {declared}); decoded anyway"
            ]
    plain = _ESCAPE_RE.sub(b"", raw)
    for label, codec in (("UTF-8", "utf_8"), ("GB18030", "gb18030")):
        try:
            text = plain.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec == "gb18030" and not _plausible_gb(plain, text):
            continue
        return text, [
            f"{what}: bytes do not fit {declared}; read as {label} - check "
            "the name and fix the sender's character set setting"
        ]
    text = plain.decode("latin_1")
    return text, [
        f"{what}: bytes fit neither {declared}, UTF-8 nor GB18030; shown as Latin-1, "
        "which may be wrong - check the name"
    ]
