"""Free text (Chinese or English) -> symptoms of a benchmark's vocabulary.

A lexicon maps surface terms to symptom codes: the vocabulary names themselves, the
English names the datasets provide, the hand-written glossary (``glossary.py``) and the
Dxy synonym list (``norm_symptom_list.txt``). Matching is longest-match, left to right;
English terms must sit on word boundaries. A match is negated when a negation cue stands
before it in the same clause (没有/无/未/否认/不..., "no", "denies", "without"...), and
"not sure" when an uncertainty cue does (可能/不确定, "maybe", "possibly"...). Every match
keeps its character span so the clinician can see which words became which symptom.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from dxassist.assistant.data import NO, UNSURE, VALUE_NAMES, YES, Benchmark, symptoms_root
from dxassist.assistant.glossary import DDXPLUS_TERMS, EN_SYNONYMS, GLOSSARY, ZH_SYNONYMS

#: Chinese negation cues that cover the rest of the clause
ZH_NEG_SCOPE = ("没有", "并没有", "并无", "否认", "未见", "从未", "从没", "没", "无", "未", "非")
#: Chinese cues that negate only the term right after them (at most one character between)
ZH_NEG_NEAR = ("不", "不再", "不会", "别")
ZH_UNSURE = ("不确定", "不清楚", "不知道", "说不清", "可能", "好像", "似乎", "疑似", "也许")
#: phrases that look like negation but are not ("no obvious cause", "cause unknown")
ZH_PSEUDO = ("无明显诱因", "无诱因", "不明原因", "原因不明", "无明显原因", "没有原因", "无缘无故")
EN_NEG = (
    "no", "not", "denies", "denied", "deny", "denying", "without", "never", "nor",
    "negative for", "free of", "absence of", "absent", "doesn't have", "does not have",
    "don't have", "do not have", "hasn't had", "has not had", "haven't had", "no longer",
)  # fmt: skip
EN_UNSURE = ("maybe", "possibly", "perhaps", "not sure", "unsure", "might have", "probably",
             "questionable", "?")  # fmt: skip
EN_PSEUDO = ("no change", "not only", "no improvement", "not improved", "not better")
#: every English cue as one pattern, longest first (word-bounded except "?")
EN_CUES = re.compile(
    "|".join(
        re.escape(c) if c == "?" else r"\b" + re.escape(c) + r"\b"
        for c in sorted(EN_NEG + EN_UNSURE, key=len, reverse=True)
    )
)
#: conjunctions and punctuation that end a negation's scope
CLAUSE_BREAK = re.compile(
    r"[，。,.;；!！?？\n]|但是|但|可是|不过|然而|\bbut\b|\bhowever\b|\balthough\b|\bthough\b"
    r"|\bexcept\b|\bapart from\b"
)
#: how far back (characters) a clause-scope cue reaches
SCOPE_CHARS = 40
MASK = "\u25a1"


def normalise(text: str) -> str:
    """Lower case, full-width -> half-width, one character for one (offsets are kept)."""
    out = []
    for ch in text:
        n = unicodedata.normalize("NFKC", ch).lower()
        out.append(n if len(n) == 1 else ch.lower())
    return "".join(out)


def _is_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass(frozen=True)
class Mapping:
    """One stretch of text that became a symptom."""

    start: int
    end: int
    text: str
    symptom: str
    name: str
    value: str
    cue: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Lexicon:
    """Surface terms -> symptom codes, with longest-match lookup."""

    def __init__(self, terms: dict[str, str], names: dict[str, str]) -> None:
        self.terms = {normalise(t).strip(): c for t, c in terms.items() if t.strip()}
        self.names = names
        self._by_first: dict[str, list[str]] = {}
        for t in sorted(self.terms, key=len, reverse=True):
            self._by_first.setdefault(t[0], []).append(t)

    def __len__(self) -> int:
        return len(self.terms)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def for_benchmark(cls, bench: Benchmark) -> Lexicon:
        vocab = set(bench.symptoms)
        terms: dict[str, str] = {}

        def add(term: str, code: str) -> None:
            key = normalise(term).strip()
            if not key or (len(key) == 1 and not _cjk(key)):
                return
            terms.setdefault(key, code)

        for s in bench.symptoms:  # 1. the vocabulary's own names win
            add(s, s)
        if bench.name == "ddxplus":
            for phrase, code in DDXPLUS_TERMS.items():
                if code in vocab:
                    add(phrase, code)
            by_en = {p: c for p, c in DDXPLUS_TERMS.items() if c in vocab}
            for zh, ens in GLOSSARY.items():
                for en in ens:
                    if en in by_en:
                        add(zh, by_en[en])
                        for syn in ZH_SYNONYMS.get(zh, ()):
                            add(syn, by_en[en])
                        break
            names = {c: bench.symptom_en.get(c, c) for c in bench.symptoms}
            return cls(terms, names)
        for s in bench.symptoms:  # 2. English names given by the dataset
            given = bench.symptom_en.get(s)
            if given:
                add(given, s)
        for s in bench.symptoms:  # 3. glossary and synonyms
            for en in GLOSSARY.get(s, ()):
                add(en, s)
            for zh in ZH_SYNONYMS.get(s, ()):
                add(zh, s)
            for en in EN_SYNONYMS.get(s.lower(), ()):
                add(en, s)
        for norm, variants in _dxy_synonyms().items():
            if norm in vocab:
                for v in variants:
                    if len(v) >= 2:
                        add(v, norm)
        # 4. Chinese words for an English vocabulary (and the other way round) via the glossary
        lower = {s.lower(): s for s in bench.symptoms}
        for en_name, code in list(lower.items()):
            for zh, ens in GLOSSARY.items():
                if en_name in ens or en_name == ens[0]:
                    add(zh, code)
                    for syn in ZH_SYNONYMS.get(zh, ()):
                        add(syn, code)
        for s in bench.symptoms:
            en = (bench.symptom_en.get(s) or "").lower()
            if en:
                for zh, ens in GLOSSARY.items():
                    if en in ens and zh not in vocab:
                        add(zh, s)
        names = {c: _display(bench, c) for c in bench.symptoms}
        return cls(terms, names)

    # -- matching ---------------------------------------------------------------------------
    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, code) of every longest match, left to right, not overlapping."""
        norm = normalise(text)
        out = []
        i, n = 0, len(norm)
        while i < n:
            hit = None
            for t in self._by_first.get(norm[i], ()):
                if not norm.startswith(t, i):
                    continue
                end = i + len(t)
                if _is_word(t[0]) and i > 0 and _is_word(norm[i - 1]):
                    continue
                if _is_word(t[-1]) and end < n and _is_word(norm[end]):
                    # allow a plural or verb "s"/"es"/"ing" on an English term
                    m = re.match(r"(s|es|ing|ed)\b", norm[end:])
                    if not m:
                        continue
                    end += m.end()
                hit = (i, end, self.terms[t])
                break
            if hit:
                out.append(hit)
                i = hit[1]
            else:
                i += 1
        return out

    def map(self, text: str) -> list[Mapping]:
        """Every symptom mention in ``text`` with its value (yes / no / unsure) and cue."""
        if not text or not text.strip():
            return []
        norm = normalise(text)
        hits = self.find(text)
        masked = list(norm)
        for s, e, _ in hits:
            masked[s:e] = MASK * (e - s)
        masked_text = "".join(masked)
        for pseudo in ZH_PSEUDO + EN_PSEUDO:
            masked_text = masked_text.replace(pseudo, MASK * len(pseudo))
        out = []
        for s, e, code in hits:
            value, cue = _value_before(masked_text, s)
            out.append(
                Mapping(
                    start=s,
                    end=e,
                    text=text[s:e],
                    symptom=code,
                    name=self.names.get(code, code),
                    value=VALUE_NAMES[value],
                    cue=cue,
                )
            )
        return out


def _cjk(s: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in s)


def _display(bench: Benchmark, code: str) -> str:
    en = bench.symptom_en.get(code)
    return f"{code} ({en})" if en and en != code else code


_dxy_cache: dict[str, tuple[str, ...]] | None = None


def _dxy_synonyms() -> dict[str, tuple[str, ...]]:
    """The Dxy release's normalised symptom -> surface forms list (Chinese)."""
    global _dxy_cache
    if _dxy_cache is None:
        path = symptoms_root() / "dxy" / "norm_symptom_list.txt"
        out: dict[str, tuple[str, ...]] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                norm, _, rest = line.partition("\t")
                if norm.strip() and rest.strip():
                    out[norm.strip()] = tuple(v.strip() for v in rest.split("/") if v.strip())
        _dxy_cache = out
    return _dxy_cache


def _clause_start(text: str, pos: int) -> int:
    start = max(0, pos - SCOPE_CHARS)
    for m in CLAUSE_BREAK.finditer(text, start, pos):
        start = m.end()
    return start


def _value_before(text: str, pos: int) -> tuple[int, str | None]:
    """The value a mention at ``pos`` takes from cues before it in its clause."""
    start = _clause_start(text, pos)
    prefix = text[start:pos]
    best: tuple[int, int, str] | None = None  # (cue end, value, cue)

    def consider(end: int, value: int, cue: str) -> None:
        nonlocal best
        if best is None or end > best[0] or (end == best[0] and len(cue) > len(best[2])):
            best = (end, value, cue)

    for cue in ZH_UNSURE:
        i = prefix.rfind(cue)
        if i >= 0:
            consider(i + len(cue), UNSURE, cue)
    for cue in ZH_NEG_SCOPE:
        i = prefix.rfind(cue)
        if i >= 0:
            consider(i + len(cue), NO, cue)
    for cue in ZH_NEG_NEAR:
        i = prefix.rfind(cue)
        if i >= 0 and len(prefix) - (i + len(cue)) <= 1:
            consider(i + len(cue), NO, cue)
    for m in EN_CUES.finditer(prefix):
        cue = m.group(0)
        consider(m.end(), UNSURE if cue in EN_UNSURE else NO, cue)
    if best is None:
        return YES, None
    # an uncertainty cue right after a negation cue ("不确定") was taken as the longer cue
    return best[1], best[2]


def resolve(mappings: list[Mapping]) -> dict[str, int]:
    """Symptom -> value from text mentions; a later mention of the same symptom wins."""
    out: dict[str, int] = {}
    for m in mappings:
        out[m.symptom] = VALUE_NAMES.index(m.value)
    return out
