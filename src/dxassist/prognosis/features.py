"""Admission labs: what each lab is, how values are checked, and the admission window.

The admission-window rule (used for training, evaluation and documented in the card):

    The *anchor* is the patient's first blood draw (the earliest ``RE_DATE`` of any lab).
    Each lab's feature is its **first non-missing value drawn at most 24 h after the
    anchor**. Rows drawn later are never read, because later rows (some taken just
    before death) leak the outcome.

Value checks (the same for the CLI, the API and the cohort files): a value that cannot be
a real measurement (negative, a percentage over 100, an LDH in the tens of thousands, not
a number) is refused with an :class:`InvalidLabError` saying what is wrong; a missing lab
is allowed and reported as a warning; a value outside what the model saw in training is
accepted with a warning.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dxassist.errors import InputError

#: Length of the admission window after the first draw.
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class LabSpec:
    """One lab the model uses: the key users type, the cohort column, unit and limits."""

    key: str
    column: str
    name: str
    unit: str
    #: values outside [lowest, highest] are refused (impossible or a unit mix-up)
    lowest: float
    highest: float
    #: a plain-words reason shown when a value is above `highest`
    too_high_hint: str


LABS: tuple[LabSpec, ...] = (
    LabSpec(
        key="LDH",
        column="Lactate dehydrogenase",
        name="lactate dehydrogenase (LDH)",
        unit="U/L",
        lowest=1.0,
        highest=10_000.0,
        too_high_hint="no plausible serum LDH is that high; check the value and that it is "
        "in U/L (not U/dL or µkat/L)",
    ),
    LabSpec(
        key="hsCRP",
        column="High sensitivity C-reactive protein",
        name="high-sensitivity C-reactive protein (hs-CRP)",
        unit="mg/L",
        lowest=0.0,
        highest=1_000.0,
        too_high_hint="no plausible CRP is that high; check the value and that it is in "
        "mg/L (not nmol/L; mg/dL must be multiplied by 10)",
    ),
    LabSpec(
        key="lymphocyte_pct",
        column="(%)lymphocyte",
        name="lymphocytes (% of white cells)",
        unit="%",
        lowest=0.0,
        highest=100.0,
        too_high_hint="a percentage cannot exceed 100; give lymphocytes as a % of white "
        "cells (not the absolute count)",
    ),
)
LAB_KEYS: tuple[str, ...] = tuple(s.key for s in LABS)
BY_KEY: dict[str, LabSpec] = {s.key: s for s in LABS}
#: other spellings accepted on input (compared case-insensitively)
ALIASES: dict[str, str] = {
    "ldh": "LDH",
    "lactate_dehydrogenase": "LDH",
    "hscrp": "hsCRP",
    "hs_crp": "hsCRP",
    "hs-crp": "hsCRP",
    "crp": "hsCRP",
    "lymphocyte_pct": "lymphocyte_pct",
    "lymphocyte%": "lymphocyte_pct",
    "lymph_pct": "lymphocyte_pct",
    "lymphocytes_pct": "lymphocyte_pct",
}

#: aliases that name a related but not always identical test: accepted with a warning
READ_AS: dict[str, str] = {
    "crp": "{name!r} was read as hs-CRP, the test the model was trained on (same unit, "
    "mg/L); check that your laboratory's CRP is reported in mg/L, and use the name hsCRP "
    "to silence this warning",
}


class InvalidLabError(InputError):
    """A lab value that cannot be a real measurement, or an unknown lab name."""


def canonical_key(name: str) -> str:
    """The model's key for a user-typed lab name; InvalidLabError if unknown."""
    key = ALIASES.get(name.strip().lower())
    if key is None:
        raise InvalidLabError(
            f"unknown lab {name.strip()[:40]!r}; the model uses {', '.join(LAB_KEYS)} "
            f"({', '.join(f'{s.key} in {s.unit}' for s in LABS)})"
        )
    return key


def check_value(key: str, value: object) -> float:
    """A checked lab value (a finite number in the lab's possible range) or InvalidLabError."""
    spec = BY_KEY[key]
    if isinstance(value, bool):
        raise InvalidLabError(f"{key}: {value!r} is not a number; give {spec.name} in {spec.unit}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            raise InvalidLabError(
                f"{key}: {text[:40]!r} is not a number; give {spec.name} in {spec.unit} "
                "(digits and a decimal point, no unit)"
            ) from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise InvalidLabError(f"{key}: {value!r} is not a number; give {spec.name} in {spec.unit}")
    if not math.isfinite(number):
        raise InvalidLabError(f"{key}: {value!r} is not a finite number")
    if number < 0:
        raise InvalidLabError(f"{key}: {number:g} {spec.unit} is negative; a lab value cannot be")
    if number < spec.lowest:
        raise InvalidLabError(
            f"{key}: {number:g} {spec.unit} is below {spec.lowest:g}, which no real "
            f"{spec.name} is; check the value"
        )
    if number > spec.highest:
        raise InvalidLabError(
            f"{key}: {number:g} {spec.unit} is above {spec.highest:g}: {spec.too_high_hint}"
        )
    return number


def check_labs(labs: Mapping[str, object]) -> tuple[dict[str, float | None], list[str]]:
    """Validate a patient's labs: (every model lab → value or None, warnings for missing).

    Unknown names and impossible values raise InvalidLabError; a lab given twice (under
    two spellings) too. At least one lab must be present.
    """
    values: dict[str, float | None] = dict.fromkeys(LAB_KEYS)
    seen: dict[str, str] = {}
    notes: list[str] = []
    for name, raw in labs.items():
        key = canonical_key(name)
        if name.strip().lower() in READ_AS:
            notes.append(READ_AS[name.strip().lower()].format(name=name.strip()))
        if key in seen:
            raise InvalidLabError(
                f"{key} given twice (as {seen[key]!r} and {name!r}); give it once"
            )
        seen[key] = name
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue  # missing: allowed, warned below
        values[key] = check_value(key, raw)
    if all(v is None for v in values.values()):
        raise InvalidLabError(
            "no lab value given; give at least one of "
            + ", ".join(f"{s.key} ({s.unit})" for s in LABS)
        )
    warnings = notes + [
        f"{BY_KEY[k].key} not given: the risk is less reliable without {BY_KEY[k].name}"
        for k, v in values.items()
        if v is None
    ]
    return values, warnings


# --------------------------------------------------------------------------- cohort files


@dataclass(frozen=True)
class AdmissionFeatures:
    """One patient's admission labs, where each came from, and the outcome."""

    patient_id: str
    outcome: int  # 1 = died
    admission: datetime
    #: first draw (the window's start); None when the patient has no draw at all
    anchor: datetime | None
    #: end of the window (anchor + WINDOW); no value is taken from a later row
    cutoff: datetime | None
    values: dict[str, float | None]
    #: draw time of each value taken (None when the lab is missing in the window)
    taken_at: dict[str, datetime | None]
    age: float | None = None
    gender: int | None = None  # 1 male, 2 female (cohort coding)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def n_labs(self) -> int:
        return sum(v is not None for v in self.values.values())


def default_data_dir() -> Path:
    """The Tongji cohort folder: $DXASSIST_SHARED_DATA/clinical/tongji-covid19, else the
    shared data beside the checkout (as tests and CI use it)."""
    env = os.environ.get("DXASSIST_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[4] / "shared" / "data"
    return root / "clinical" / "tongji-covid19"


TRAIN_FILE = "tongji_train_375_timeseries.csv"
TEST_FILE = "tongji_test_110_timeseries.csv"


def _when(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a date-time (YYYY-MM-DD HH:MM:SS)") from None


def admission_features(
    patient_id: str, rows: list[dict[str, str]], where: str = "cohort"
) -> AdmissionFeatures:
    """Apply the admission-window rule to one patient's rows (any order)."""
    first = rows[0]
    outcome_text = first["outcome"].strip()
    if outcome_text not in ("0", "1"):
        raise InputError(f"{where}: patient {patient_id}: outcome {outcome_text!r} is not 0 or 1")
    drawn = [(_when(r["RE_DATE"], where), i, r) for i, r in enumerate(rows) if r["RE_DATE"].strip()]
    drawn.sort(key=lambda t: (t[0], t[1]))
    anchor = drawn[0][0] if drawn else None
    cutoff = anchor + WINDOW if anchor is not None else None
    values: dict[str, float | None] = dict.fromkeys(LAB_KEYS)
    taken: dict[str, datetime | None] = dict.fromkeys(LAB_KEYS)
    for spec in LABS:
        for when, _i, row in drawn:
            assert cutoff is not None
            if when > cutoff:
                break  # sorted by time: every later row is after the cut-off too
            raw = row.get(spec.column, "").strip()
            if raw:
                try:
                    values[spec.key] = check_value(spec.key, raw)
                except InvalidLabError as exc:
                    raise InputError(f"{where}: patient {patient_id}: {exc}") from None
                taken[spec.key] = when
                break
    age_text = first.get("age", "").strip()
    gender_text = first.get("gender", "").strip()
    return AdmissionFeatures(
        patient_id=patient_id,
        outcome=int(outcome_text),
        admission=_when(first["Admission time"], where),
        anchor=anchor,
        cutoff=cutoff,
        values=values,
        taken_at=taken,
        age=float(age_text) if age_text else None,
        gender=int(float(gender_text)) if gender_text else None,
    )


def load_cohort(path: Path) -> list[AdmissionFeatures]:
    """Every patient of a Tongji time-series CSV, reduced to admission features.

    Rows are grouped by ``patient_id_filled``; patients keep the order of the file.
    """
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read the cohort file {path} ({exc.strerror or exc}); give the folder of "
            "the Tongji CSVs with --data or set DXASSIST_SHARED_DATA"
        ) from None
    with handle:
        reader = csv.DictReader(handle)
        needed = {"patient_id_filled", "RE_DATE", "Admission time", "outcome"} | {
            s.column for s in LABS
        }
        missing = needed - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path.name}: missing columns {sorted(missing)}")
        groups: dict[str, list[dict[str, str]]] = {}
        for row in reader:
            groups.setdefault(row["patient_id_filled"].strip(), []).append(row)
    return [admission_features(pid, rows, path.name) for pid, rows in groups.items()]
