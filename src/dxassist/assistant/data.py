"""Loaders for the automatic-diagnosis benchmarks in ``shared/data/symptoms``.

Each loader reads the files in place and returns a :class:`Benchmark`: the symptom
vocabulary, the diseases, and the official train / test split, plus a validation split
carved from train (GMD-12 has an official dev split, which is used instead). The test
split is only for the final evaluation; models are chosen on ``val``.

Symptom values are stored as indices: 0 yes (present), 1 no (absent), 2 not sure.
The two MZ-4 versions (710 cases, Wei et al. 2018; 1,733 cases, DxFormer) are separate
benchmarks and never mixed.
"""

from __future__ import annotations

import ast
import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dxassist.errors import InputError

YES, NO, UNSURE = 0, 1, 2
VALUE_NAMES = ("yes", "no", "unsure")
#: accepted spellings of a symptom value (CLI and API)
VALUE_ALIASES = {
    "yes": YES, "y": YES, "1": YES, "true": YES, "present": YES, "+": YES, "是": YES, "有": YES,
    "no": NO, "n": NO, "0": NO, "false": NO, "absent": NO, "-": NO, "否": NO, "无": NO,
    "unsure": UNSURE, "not sure": UNSURE, "not_sure": UNSURE, "notsure": UNSURE, "?": UNSURE,
    "2": UNSURE, "u": UNSURE, "unknown": UNSURE, "不确定": UNSURE,
}  # fmt: skip
#: fraction of train held out as validation where there is no official dev split
VAL_FRACTION = 0.15
VAL_SEED = 20261204


class DataNotFoundError(InputError):
    """The benchmark files are not where they should be."""


@dataclass(frozen=True)
class Case:
    """One consultation: self-reported (explicit) and elicited (implicit) symptoms."""

    id: str
    disease: str
    explicit: dict[str, int]
    implicit: dict[str, int]
    text: str | None = None
    age: int | None = None
    sex: str | None = None
    #: the initial evidence (DDXPlus), else None
    initial: str | None = None

    def all_symptoms(self) -> dict[str, int]:
        out = dict(self.implicit)
        out.update(self.explicit)
        return out


@dataclass
class Benchmark:
    """A dataset with its vocabulary and splits."""

    name: str
    title: str
    language: str
    symptoms: list[str]
    diseases: list[str]
    train: list[Case]
    val: list[Case]
    test: list[Case]
    #: display names in English where known (code -> name)
    symptom_en: dict[str, str] = field(default_factory=dict)
    disease_en: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    citation: str = ""
    #: the symptom-disease knowledge (DDXPlus: condition -> linked evidence codes)
    knowledge: dict[str, Any] = field(default_factory=dict)
    #: answer for a symptom the case does not mention, in the interactive evaluation
    unmentioned_answer: int = UNSURE

    @property
    def fit(self) -> list[Case]:
        """The cases a model is trained on: the official train split minus validation."""
        return self.train

    def symptom_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symptoms)}

    def disease_index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.diseases)}


def symptoms_root() -> Path:
    """``shared/data/symptoms``: $DXASSIST_SYMPTOM_DATA, else beside the checkout."""
    env = os.environ.get("DXASSIST_SYMPTOM_DATA")
    if env:
        return Path(env)
    shared = os.environ.get("DXASSIST_SHARED_DATA")
    if shared:
        return Path(shared) / "symptoms"
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "symptoms"


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataNotFoundError(
            f"benchmark file {path} not found; set DXASSIST_SYMPTOM_DATA to the folder "
            "that holds the symptom benchmarks (shared/data/symptoms)"
        )
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _goal_case(x: dict[str, Any], text_key: str | None = None) -> Case:
    """One case of a goal-set file (the MZ-4 / Dxy / SD-90 format of Wei et al. 2018)."""
    text = (x.get(text_key) or "").strip() if text_key else ""
    return Case(
        id=str(x["consult_id"]),
        disease=x["disease_tag"],
        explicit=_bool_slots(x["goal"]["explicit_inform_slots"]),
        implicit=_bool_slots(x["goal"]["implicit_inform_slots"]),
        text=text or None,
    )


def _lines(path: Path) -> list[str]:
    """The non-blank lines of a UTF-8 list file, stripped."""
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def _bool_slots(slots: dict[str, Any]) -> dict[str, int]:
    out = {}
    for k, v in slots.items():
        if isinstance(v, bool):
            out[k] = YES if v else NO
        elif str(v).lower() in VALUE_ALIASES:
            out[k] = VALUE_ALIASES[str(v).lower()]
    return out


def carve_val(cases: list[Case], fraction: float = VAL_FRACTION) -> tuple[list[Case], list[Case]]:
    """A seeded split of train into (fit, val), stratified by disease."""
    rng = np.random.default_rng(VAL_SEED)
    by: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        by.setdefault(c.disease, []).append(i)
    val_idx: set[int] = set()
    for d in sorted(by):
        idx = np.array(by[d])
        rng.shuffle(idx)
        n = max(1, round(len(idx) * fraction))
        val_idx.update(int(i) for i in idx[:n])
    fit = [c for i, c in enumerate(cases) if i not in val_idx]
    val = [c for i, c in enumerate(cases) if i in val_idx]
    return fit, val


def _vocab(cases: list[Case]) -> list[str]:
    seen: dict[str, None] = {}
    for c in cases:
        for s in list(c.explicit) + list(c.implicit):
            seen.setdefault(s, None)
    return list(seen)


def _translations(root: Path, stem: str) -> dict[str, str]:
    """Chinese -> English symptom names from the Chain-of-Diagnosis translated test cases."""
    zh_path = root / "cod_translation" / f"{stem}_zh.json"
    en_path = root / "cod_translation" / f"{stem}_en.json"
    if not zh_path.is_file() or not en_path.is_file():
        return {}
    out: dict[str, str] = {}
    for a, b in zip(_read_json(zh_path), _read_json(en_path), strict=False):
        for key in ("explicit_symptoms", "implicit_symptoms"):
            for (zs, _), (es, _) in zip(a.get(key, []), b.get(key, []), strict=False):
                out.setdefault(zs, es)
        for zd, ed in zip(
            a.get("candidate_diseases", []), b.get("candidate_diseases", []), strict=False
        ):
            out.setdefault(zd, ed)
    return out


def _shared_english() -> dict[str, str]:
    """All Chinese -> English names the datasets themselves provide (MZ-4, Dxy, GMD-12)."""
    root = symptoms_root()
    out: dict[str, str] = {}
    out.update(_translations(root / "muzhi-mz4", "Muzhi"))
    for k, v in _translations(root / "dxy", "Dxy").items():
        out.setdefault(k, v)
    g = root / "gmd12"
    for zh_file, en_file in (
        ("gmd_symptom.txt", "en_symptom.txt"),
        ("gmd_disease.txt", "en_disease.txt"),
    ):
        if (g / zh_file).is_file() and (g / en_file).is_file():
            zs = (g / zh_file).read_text(encoding="utf-8").splitlines()
            es = (g / en_file).read_text(encoding="utf-8").splitlines()
            for a, b in zip(zs, es, strict=False):
                if a.strip() and b.strip():
                    out.setdefault(a.strip(), b.strip())
    return out


def _english_for(names: list[str]) -> dict[str, str]:
    from dxassist.assistant.glossary import DISEASE_EN, GLOSSARY

    shared = _shared_english()
    out = {}
    for n in names:
        if n in DISEASE_EN:
            out[n] = DISEASE_EN[n]
        elif n in GLOSSARY:
            out[n] = GLOSSARY[n][0]
        elif n in shared:
            out[n] = shared[n]
    return out


RESEARCH_ONLY = "research use only; data licence not stated by the authors (unverified)"


def load_mz4() -> Benchmark:
    root = symptoms_root() / "muzhi-mz4"
    raw = _read_json(root / "mz_acl2018_goal_set.json")
    slots = _read_json(root / "mz_acl2018_slot_set.json")

    train = [_goal_case(x, "self_report_text") for x in raw["train"]]
    test = [_goal_case(x, "self_report_text") for x in raw["test"]]
    fit, val = carve_val(train)
    symptoms = [s for s, _ in sorted(slots.items(), key=lambda kv: kv[1]) if s != "disease"]
    diseases = sorted({c.disease for c in train})
    return Benchmark(
        name="mz4",
        title="MZ-4 (Muzhi, Wei et al. ACL 2018; 710 cases)",
        language="zh",
        symptoms=symptoms,
        diseases=diseases,
        train=fit,
        val=val,
        test=test,
        symptom_en=_english_for(symptoms),
        disease_en=_english_for(diseases),
        licence=RESEARCH_ONLY,
        citation="Wei Z. et al., Task-oriented Dialogue System for Automatic Diagnosis, ACL 2018",
    )


def _dxformer_cases(path: Path, prefix: str) -> list[Case]:
    return [
        Case(
            id=f"{prefix}{x['pid']}",
            disease=x["label"],
            explicit=_bool_slots(x["exp_sxs"]),
            implicit=_bool_slots(x["imp_sxs"]),
        )
        for x in _read_json(path)
    ]


def _dxformer_benchmark(name: str, title: str, folder: Path, citation: str) -> Benchmark:
    train = _dxformer_cases(folder / "train_set.json", "")
    test = _dxformer_cases(folder / "test_set.json", "")
    fit, val = carve_val(train)
    symptoms = _vocab(train)  # symptoms seen only in test cannot be learnt; they are ignored
    diseases = sorted({c.disease for c in train})
    return Benchmark(
        name=name,
        title=title,
        language="zh",
        symptoms=symptoms,
        diseases=diseases,
        train=fit,
        val=val,
        test=test,
        symptom_en=_english_for(symptoms),
        disease_en=_english_for(diseases),
        licence=RESEARCH_ONLY,
        citation=citation,
    )


def load_mz4_1733() -> Benchmark:
    return _dxformer_benchmark(
        "mz4-1733",
        "MZ-4, 1,733-case version (DxFormer release)",
        symptoms_root() / "muzhi-mz4" / "dxformer_mz4_1733",
        "Chen W. et al., DxFormer, Bioinformatics 2022 (data release of MZ-4, 1,733 cases)",
    )


def load_mz10() -> Benchmark:
    return _dxformer_benchmark(
        "mz10",
        "MZ-10 (IMCS-21 / DxFormer; 4,116 cases)",
        symptoms_root() / "mz10",
        "Chen W. et al., DxFormer, Bioinformatics 2022; IMCS-21, Bioinformatics 2022",
    )


def load_dxy() -> Benchmark:
    root = symptoms_root() / "dxy"
    raw = _read_json(root / "dxy_dialog_data_dialog_v2.json")

    train = [_goal_case(x, "self_repo") for x in raw["train"]]
    test = [_goal_case(x, "self_repo") for x in raw["test"]]
    fit, val = carve_val(train)
    symptoms = _vocab(train + test)  # the 41 normalised symptoms (all_norm_symptoms.txt)
    norm = root / "all_norm_symptoms.txt"
    if norm.is_file():
        listed = _lines(norm)
        symptoms = listed + [s for s in symptoms if s not in listed]
    diseases = sorted({c.disease for c in train})
    return Benchmark(
        name="dxy",
        title="Dxy (Xu et al. AAAI 2019; 527 cases)",
        language="zh",
        symptoms=symptoms,
        diseases=diseases,
        train=fit,
        val=val,
        test=test,
        symptom_en=_english_for(symptoms),
        disease_en=_english_for(diseases),
        licence=RESEARCH_ONLY,
        citation="Xu L. et al., End-to-End Knowledge-Routed Relational Dialogue System for "
        "Automatic Diagnosis, AAAI 2019",
    )


def load_gmd12() -> Benchmark:
    root = symptoms_root() / "gmd12"
    raw = _read_json(root / "gmd12_zh_train_dev_test.json")

    def cases(split: str) -> list[Case]:
        return [
            Case(
                id=f"{split}-{i}",
                disease=x["disease_tag"],
                explicit=_bool_slots(x["explicit_inform_slots"]),
                implicit=_bool_slots(x["implicit_inform_slots"]),
            )
            for i, x in enumerate(raw[split])
        ]

    train, val, test = cases("train"), cases("dev"), cases("test")
    symptoms = _lines(root / "gmd_symptom.txt")
    symptoms += [s for s in _vocab(train + val + test) if s not in symptoms]
    diseases = _lines(root / "gmd_disease.txt")
    return Benchmark(
        name="gmd12",
        title="GMD-12 (12 diseases, 2,390 cases; Chinese with English names)",
        language="zh",
        symptoms=symptoms,
        diseases=diseases,
        train=train,
        val=val,
        test=test,
        symptom_en=_english_for(symptoms),
        disease_en=_english_for(diseases),
        licence=RESEARCH_ONLY,
        citation="GMD-12 / MDD as used by BR-Agent (IJCAI 2022), MTDiag, SA-MPF (attribution "
        "unverified)",
    )


def load_sd90() -> Benchmark:
    root = symptoms_root() / "synthetic-sd90-en"
    raw = _read_json(root / "sd90_goal_set.json")
    slots = _read_json(root / "sd90_slot_set.json")
    probs = _read_json(root / "sd90_disease_symptom_probabilities.json")

    train = [_goal_case(x) for x in raw["train"]]
    test = [_goal_case(x) for x in raw["test"]]
    fit, val = carve_val(train)
    symptoms = [s for s, _ in sorted(slots.items(), key=lambda kv: kv[1]) if s != "disease"]
    diseases = sorted(probs, key=lambda d: probs[d]["index"])
    return Benchmark(
        name="sd90",
        title="SD-90 (synthetic, SymCat probabilities; 30,000 patients)",
        language="en",
        symptoms=symptoms,
        diseases=diseases,
        train=fit,
        val=val,
        test=test,
        symptom_en={s: s for s in symptoms},
        disease_en={d: d for d in diseases},
        licence="non-commercial research only (SymCat CC BY-NC-SA 4.0, unverified)",
        citation="Liao K. et al., arXiv:2004.14254 (2020); Zhong C. et al., Bioinformatics 2022",
        knowledge={"symptom_probability": {d: probs[d]["symptom"] for d in diseases}},
    )


def _ddx_evidence_code(token: str) -> str:
    return token.split("_@_", 1)[0]


def load_ddxplus() -> Benchmark:
    """DDXPlus: the knowledge files, and the 2,611-patient official-test subset.

    There is no training data: ``train`` and ``val`` are empty, and the test patients are
    for evaluation only. An evidence is "yes" when the patient has any value of it other
    than its default; every other evidence is "no" (DDXPlus patients are complete records).
    """
    kb = symptoms_root() / "ddxplus-kb"
    conditions = _read_json(kb / "release_conditions.json")
    evidences = _read_json(kb / "release_evidences.json")
    symptoms = list(evidences)
    diseases = sorted(conditions)
    path = symptoms_root() / "ddxplus-test-subset-en" / "release_test_patients_subset2611.csv"
    if not path.is_file():
        raise DataNotFoundError(f"DDXPlus test subset {path} not found")
    test = []
    with path.open(encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            tokens = ast.literal_eval(row["EVIDENCES"])
            present: dict[str, int] = {}
            for t in tokens:
                code = _ddx_evidence_code(t)
                value = t.split("_@_", 1)[1] if "_@_" in t else None
                default = evidences.get(code, {}).get("default_value")
                if value is not None and str(value) == str(default):
                    continue
                present[code] = YES
            initial = row["INITIAL_EVIDENCE"]
            explicit = {initial: YES}
            implicit = {k: v for k, v in present.items() if k != initial}
            test.append(
                Case(
                    id=f"ddx-{i}",
                    disease=row["PATHOLOGY"],
                    explicit=explicit,
                    implicit=implicit,
                    age=int(row["AGE"]),
                    sex=row["SEX"],
                    initial=initial,
                )
            )
    knowledge = {
        "conditions": {
            d: {
                "symptoms": list(conditions[d].get("symptoms", {})),
                "antecedents": list(conditions[d].get("antecedents", {})),
                "severity": int(conditions[d].get("severity", 0)),
                "icd10": conditions[d].get("icd10-id", ""),
                "name_en": conditions[d].get("cond-name-eng", d),
            }
            for d in diseases
        },
        "questions": {e: evidences[e].get("question_en", e) for e in symptoms},
        # a sub-question (e.g. "Is the rash swollen?") and the question it depends on
        # ("Do you have any lesions, redness or problems on your skin?"): `code_question`
        "parents": {
            e: evidences[e]["code_question"]
            for e in symptoms
            if evidences[e].get("code_question", e) not in (e, None)
            and evidences[e]["code_question"] in evidences
        },
        "antecedent": {e: bool(evidences[e].get("is_antecedent")) for e in symptoms},
    }
    return Benchmark(
        name="ddxplus",
        title="DDXPlus (knowledge base; 2,611 patients of the official test split)",
        language="en",
        symptoms=symptoms,
        diseases=diseases,
        train=[],
        val=[],
        test=test,
        symptom_en={e: evidences[e].get("question_en", e) for e in symptoms},
        disease_en={d: conditions[d].get("cond-name-eng", d) for d in diseases},
        licence="CC BY 4.0 (DDXPlus, Fansi Tchango et al. NeurIPS 2022)",
        citation="Fansi Tchango A. et al., DDXPlus, NeurIPS 2022 Datasets & Benchmarks",
        knowledge=knowledge,
        unmentioned_answer=NO,
    )


LOADERS: dict[str, Callable[[], Benchmark]] = {
    "mz4": load_mz4,
    "mz4-1733": load_mz4_1733,
    "dxy": load_dxy,
    "mz10": load_mz10,
    "gmd12": load_gmd12,
    "sd90": load_sd90,
    "ddxplus": load_ddxplus,
}
DATASETS = tuple(LOADERS)


@dataclass(frozen=True)
class DatasetInfo:
    """What a clinician needs to pick a dataset: who its patients are and its language."""

    label: str
    population: str
    language: str
    diseases: int
    source: str


#: human-readable names and populations (from the datasets' disease lists and papers)
DATASET_INFO: dict[str, DatasetInfo] = {
    "ddxplus": DatasetInfo(
        "DDXPlus", "adults and children, general medicine", "English", 49,
        "simulated patients from a medical knowledge base",
    ),
    "gmd12": DatasetInfo(
        "GMD-12", "adults, general medicine", "Chinese", 12, "online consultations",
    ),
    "sd90": DatasetInfo(
        "SD-90", "general population", "English", 90, "synthetic, from SymCat statistics",
    ),
    "mz10": DatasetInfo(
        "MZ-10 (IMCS-21)", "paediatric", "Chinese", 10, "online paediatric consultations",
    ),
    "mz4": DatasetInfo(
        "MZ-4 (Muzhi)", "paediatric", "Chinese", 4, "online paediatric consultations",
    ),
    "mz4-1733": DatasetInfo(
        "MZ-4, 1,733-case version", "paediatric", "Chinese", 4,
        "online paediatric consultations",
    ),
    "dxy": DatasetInfo(
        "Dxy", "mostly paediatric", "Chinese", 5, "online consultations, dxy.cn",
    ),
}  # fmt: skip
#: used when no dataset is named: the broad knowledge base for English (or no) text, the
#: adult general-medicine set for Chinese text (DDXPlus has no Chinese lexicon)
DEFAULT_DATASET = "ddxplus"
DEFAULT_DATASET_ZH = "gmd12"


def describe(name: str) -> str:
    """``ddxplus: DDXPlus - adults and children, general medicine; English; 49 diseases``."""
    i = DATASET_INFO[name]
    return f"{name}: {i.label} - {i.population}; {i.language}; {i.diseases} diseases ({i.source})"


def has_chinese(text: str | None) -> bool:
    return bool(text) and any("\u4e00" <= ch <= "\u9fff" for ch in text or "")


def default_dataset(text: str | None) -> str:
    """The dataset used when none is named (see DEFAULT_DATASET)."""
    return DEFAULT_DATASET_ZH if has_chinese(text) else DEFAULT_DATASET


_cache: dict[str, Benchmark] = {}


class UnknownDatasetError(InputError):
    """The dataset name is not one dxassist knows."""


def check_dataset(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    key = {"mz-10": "mz10", "mz-4": "mz4", "gmd-12": "gmd12", "sd-90": "sd90"}.get(key, key)
    if key not in LOADERS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return key


def load(name: str) -> Benchmark:
    """The benchmark called ``name`` (cached)."""
    key = check_dataset(name)
    if key not in _cache:
        _cache[key] = LOADERS[key]()
    return _cache[key]
