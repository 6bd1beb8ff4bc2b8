"""Shortcut probe: how well do the model's own features identify the *data source*?

Every COVID-19 film in the training data comes from other hospitals than the normal and
the bacterial/viral films, and all children come from one hospital (Kermany). If a linear
probe on the model's pooled last-layer features tells the sources apart, the network has
encoded the source, and some of its "COVID-19" signal may be "looks like covid-rdb/MHH".

The probe (multinomial logistic regression) is fitted on val-split features and scored on
the test split, per source, next to the majority-class baseline. Also reported: how often
a *normal* adult (NIH) film is called COVID-19, and the mean COVID-19 probability per
source among films that are not COVID-19.

    python bench/source_probe.py [--manifest PATH]

Writes bench/results/source_probe.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dxassist.cxr.manifest import ManifestRow, read_manifest
from dxassist.cxr.preprocess import preprocess
from dxassist.cxr.runtime import CxrModel
from dxassist.imaging import load_file

REPO = Path(__file__).resolve().parents[1]


def features(model: CxrModel, rows: list[ManifestRow]) -> tuple[np.ndarray, np.ndarray]:
    feats, probs = [], []
    for start in range(0, len(rows), 32):
        x = np.stack([preprocess(load_file(r.path).pixels) for r in rows[start : start + 32]])
        p, _, _, f = model.session.run(None, {"image": x.astype(np.float32)})
        feats.append(f.mean(axis=(2, 3)))
        probs.append(p)
    return np.concatenate(feats), np.concatenate(probs)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    shared = os.environ.get("DXASSIST_SHARED_DATA")
    default = (Path(shared) if shared else REPO.parent / "shared" / "data") / "cxr" / "manifest.csv"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=default)
    args = ap.parse_args()
    rows = read_manifest(args.manifest)
    val = [r for r in rows if r.split == "val"]
    test = [r for r in rows if r.split == "test"]
    model = CxrModel.load()
    f_val, _ = features(model, val)
    f_test, p_test = features(model, test)
    scaler = StandardScaler().fit(f_val)
    probe = LogisticRegression(max_iter=2000, C=0.1).fit(
        scaler.transform(f_val), [r.dataset for r in val]
    )
    pred = probe.predict(scaler.transform(f_test))
    truth = np.array([r.dataset for r in test])
    majority = Counter(r.dataset for r in val).most_common(1)[0][0]
    out: dict[str, Any] = {
        "probe_accuracy": float((pred == truth).mean()),
        "majority_baseline_accuracy": float((truth == majority).mean()),
        "per_source": {},
    }
    for ds in sorted(set(truth)):
        m = truth == ds
        not_covid = m & np.array([r.label != "covid19" for r in test])
        out["per_source"][ds] = {
            "test_images": int(m.sum()),
            "probe_recall": float((pred[m] == ds).mean()),
            "mean_p_covid_non_covid_films": (
                float(p_test[not_covid, 3].mean()) if not_covid.any() else None
            ),
            "share_non_covid_called_covid": (
                float((p_test[not_covid].argmax(1) == 3).mean()) if not_covid.any() else None
            ),
        }
    print(
        f"probe accuracy {out['probe_accuracy']:.3f} "
        f"(majority baseline {out['majority_baseline_accuracy']:.3f})"
    )
    print(
        "| source | test images | probe recall | mean p(COVID) non-COVID | non-COVID called COVID |"
    )
    print("|---|---|---|---|---|")
    for ds, v in out["per_source"].items():
        mp = v["mean_p_covid_non_covid_films"]
        sc = v["share_non_covid_called_covid"]
        print(
            f"| {ds} | {v['test_images']} | {v['probe_recall']:.3f} | "
            f"{'n/a' if mp is None else f'{mp:.3f}'} | {'n/a' if sc is None else f'{sc:.3f}'} |"
        )
    path = REPO / "bench" / "results" / "source_probe.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
