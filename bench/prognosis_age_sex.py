"""Internal only: would age and sex help the outcome-risk model? (CV on the 375.)

The external 110 have no age or sex, so a model using them cannot be validated there and
is not shipped. This measures, by the same 5 x 5 patient-level CV as `dxassist prognosis
train` (logistic candidate), what adding age and sex to the three labs does on the
training cohort. Patients without age/sex would be dropped; the Tongji 375 all have them.

    PYTHONPATH=src python bench/prognosis_age_sex.py   # writes bench/results/prognosis_age_sex.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dxassist.prognosis.features import TRAIN_FILE, default_data_dir, load_cohort
from dxassist.prognosis.runtime import transform_matrix
from dxassist.prognosis.train import SEED, cross_validate, fit_transforms


def main() -> None:
    cohort = [p for p in load_cohort(default_data_dir() / TRAIN_FILE) if p.n_labs > 0]
    assert all(p.age is not None and p.gender is not None for p in cohort)
    x3 = transform_matrix(fit_transforms(cohort), [p.values for p in cohort])
    extra = np.array([[p.age or 0.0, 1.0 if p.gender == 1 else 0.0] for p in cohort])
    x5 = np.hstack([x3, extra])
    y = np.array([p.outcome for p in cohort], np.int64)
    out: dict[str, object] = {"patients": len(y), "deaths": int(y.sum())}
    for name, x in (("3 labs", x3), ("3 labs + age + sex", x5)):
        summary, _ = cross_validate(x, y, SEED)
        out[name] = summary
        lr = summary["logistic"]
        print(
            f"{name:<20} logistic CV AUC {lr['auc']['mean']:.3f} ± {lr['auc']['sd']:.3f}  "
            f"Brier {lr['brier']['mean']:.4f}  ECE {lr['calibration_error']['mean']:.3f}"
        )
    path = Path(__file__).parent / "results" / "prognosis_age_sex.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
