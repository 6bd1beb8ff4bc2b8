"""Where does the heatmap evidence sit? A shortcut check without lung masks.

No lung segmentation model can be installed here, so this measures a proxy: the share of
positive CAM mass (for the finding the reader shows) that falls in the outer border of the
image — outside the central box from 12 % to 88 % of the width and 8 % to 92 % of the
height, where on a frontal film the lung fields are not. A map spread evenly would put
36 % there. Evidence piling up in the border (text markers, collimation edges, corners)
is the classic sign of a source shortcut. It also writes a montage of four films per
source with their overlays for a person to inspect.

    python bench/heatmap_mass.py [--manifest PATH] [--per-source 40]

Writes bench/results/heatmap_mass.json and bench/results/heatmap_montage.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dxassist.cxr.heatmap import normalised_cam, overlay
from dxassist.cxr.manifest import read_manifest
from dxassist.cxr.preprocess import INPUT_SIZE, preprocess
from dxassist.cxr.runtime import CxrModel
from dxassist.imaging import load_file

REPO = Path(__file__).resolve().parents[1]
COLS = (0.12, 0.88)
ROWS = (0.08, 0.92)


def border_mask(size: int) -> np.ndarray:
    mask = np.ones((size, size), dtype=bool)
    r0, r1 = (round(f * size) for f in ROWS)
    c0, c1 = (round(f * size) for f in COLS)
    mask[r0:r1, c0:c1] = False
    return mask


def main() -> None:
    shared = os.environ.get("DXASSIST_SHARED_DATA")
    default = (Path(shared) if shared else REPO.parent / "shared" / "data") / "cxr" / "manifest.csv"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=default)
    ap.add_argument("--per-source", type=int, default=40)
    args = ap.parse_args()
    rows = [r for r in read_manifest(args.manifest) if r.split == "test"]
    rng = random.Random(0)
    model = CxrModel.load()
    border = border_mask(INPUT_SIZE)
    uniform_share = float(border.mean())
    results: dict[str, Any] = {"uniform_border_share": uniform_share, "per_source": {}}
    tiles: list[Image.Image] = []
    for ds in sorted({r.dataset for r in rows}):
        pool = [r for r in rows if r.dataset == ds]
        sample = rng.sample(pool, min(args.per_source, len(pool)))
        shares = []
        for i, r in enumerate(sample):
            rg = load_file(r.path)
            reading = model.read(rg)
            heat = normalised_cam(reading.cam, INPUT_SIZE, INPUT_SIZE)
            total = float(heat.sum())
            if total > 0:
                shares.append(float(heat[border].sum()) / total)
            if i < 4:
                x = (preprocess(rg.pixels)[0] + 1.0) / 2.0
                tile = overlay(x, reading.cam).resize((200, 200))
                tiles.append(tile)
        arr = np.array(shares)
        results["per_source"][ds] = {
            "films": len(shares),
            "mean_border_share": float(arr.mean()),
            "share_of_films_with_border_share_over_0.5": float((arr > 0.5).mean()),
        }
    # montage: one row per source, four films each
    n_rows = len(results["per_source"])
    montage = Image.new("RGB", (4 * 200, n_rows * 200))
    for k, tile in enumerate(tiles):
        montage.paste(tile, ((k % 4) * 200, (k // 4) * 200))
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    # derived from the research-only images: written for inspection, never committed
    montage.save(out_dir / "heatmap_montage.png", optimize=True)
    (out_dir / "heatmap_mass.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"share of CAM mass in the image border (uniform map: {uniform_share:.2f})")
    print("| source | films | mean border share | films with > 50 % in border |")
    print("|---|---|---|---|")
    for ds, v in results["per_source"].items():
        print(
            f"| {ds} | {v['films']} | {v['mean_border_share']:.2f} | "
            f"{v['share_of_films_with_border_share_over_0.5']:.2f} |"
        )
    print("montage rows (top to bottom): " + ", ".join(results["per_source"]))


if __name__ == "__main__":
    main()
