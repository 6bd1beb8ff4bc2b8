"""DICOM round trip: how long a study takes from a modality's C-STORE to dxassist until
its SR (and heatmap SC) are in the PACS.

A real Orthanc (Debian package) plays the PACS; `dxassist serve` runs as a subprocess
with its DICOM receiver on and Orthanc as the C-STORE destination (a temporary data
folder, SQLite). The "modality" is this script: for each of N real test-split films of
the manifest (converted to DICOM CR, chest PA, with fresh UIDs; nothing written into the
repository; interleaved across the datasets) it opens an association, sends one C-STORE
(t0 just before), notes the C-STORE response (ack), then polls Orthanc's REST API every
`--poll-ms` until the study's SR is there (t_sr; dxassist sends SR then SC in one
association) and until both are (t_both). Sequential by default (one study in flight:
the latency of one study); `--burst` sends all N first, then waits (queueing behind the
single analysis worker included).

    python bench/dicom_roundtrip.py [--n 50] [--poll-ms 20] [--burst]

Writes bench/results/dicom_roundtrip[_burst].json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage  # type: ignore[attr-defined]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.interop.dicomize import film_as_cr, manifest_test_films  # noqa: E402
from tests.interop.orthanc import free_port, start_orthanc  # noqa: E402

SHARED = Path(os.environ.get("DXASSIST_SHARED_DATA", REPO.parent / "shared" / "data"))


def films(n: int) -> list[Path]:
    per = {d: manifest_test_films(SHARED, n, (d,)) for d in ("kermany", "nih", "covid-rdb")}
    out: list[Path] = []
    while len(out) < n and any(per.values()):
        for d in per:
            if per[d] and len(out) < n:
                out.append(per[d].pop(0))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--poll-ms", type=float, default=20.0)
    ap.add_argument("--burst", action="store_true")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dx-roundtrip-"))
    dx_dicom, dx_http = free_port(), free_port()
    pacs = start_orthanc(tmp / "pacs", {"dxassist": ("DXASSIST", "127.0.0.1", dx_dicom)})
    env = {**os.environ, "DXASSIST_DATA_DIR": str(tmp / "dx")}
    log = (tmp / "serve.log").open("wb")
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dxassist.cli",
            "serve",
            "--port",
            str(dx_http),
            "--dicom-port",
            str(dx_dicom),
            "--dicom-host",
            "127.0.0.1",
            "--send-to",
            pacs.destination,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{dx_http}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("dxassist serve did not start: " + (tmp / "serve.log").read_text())
            time.sleep(0.2)

        datasets = [
            film_as_cr(f, patient_id=f"BENCH{i:03d}") for i, f in enumerate(films(args.n + 1))
        ]
        warm, datasets = datasets[0], datasets[1:]
        ae = AE(ae_title="BENCHMOD")
        ae.add_requested_context(ComputedRadiographyImageStorage)

        def send(ds: object) -> tuple[float, float, int]:
            t0 = time.monotonic()
            assoc = ae.associate("127.0.0.1", dx_dicom, ae_title="DXASSIST")
            status = assoc.send_c_store(ds)
            assoc.release()
            return t0, time.monotonic(), int(status.Status)

        def count(study_uid: str) -> int:
            found = pacs.post(
                "/tools/find",
                json.dumps({"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}),
            )
            return len(found)

        def wait(study_uid: str, t0: float) -> tuple[float, float]:
            t_sr = None
            end = time.monotonic() + args.timeout
            while time.monotonic() < end:
                n = count(study_uid)
                now = time.monotonic()
                if n >= 1 and t_sr is None:
                    t_sr = now
                if n >= 2:
                    return (t_sr - t0), (now - t0)
                time.sleep(args.poll_ms / 1000)
            raise SystemExit(f"study {study_uid}: results not in the PACS after {args.timeout} s")

        # warm-up study (not counted)
        t0, _, _ = send(warm)
        wait(warm.StudyInstanceUID, t0)

        rows = []
        if args.burst:
            sent = [(ds, *send(ds)) for ds in datasets]
            for ds, t0, t_ack, st in sent:
                sr, both = wait(ds.StudyInstanceUID, t0)
                rows.append({"ack_s": t_ack - t0, "sr_s": sr, "both_s": both, "status": st})
        else:
            for ds in datasets:
                t0, t_ack, st = send(ds)
                sr, both = wait(ds.StudyInstanceUID, t0)
                rows.append(
                    {
                        "ack_s": t_ack - t0,
                        "sr_s": sr,
                        "both_s": both,
                        "status": st,
                        "rows": int(ds.Rows),
                        "columns": int(ds.Columns),
                    }
                )
    finally:
        serve.terminate()
        serve.wait(30)
        pacs.stop()

    def summary(key: str) -> dict[str, float]:
        v = [r[key] * 1000 for r in rows]
        return {
            "p50_ms": pct(v, 50),
            "p95_ms": pct(v, 95),
            "max_ms": max(v),
            "mean_ms": float(np.mean(v)),
        }

    result = {
        "mode": "burst" if args.burst else "sequential",
        "n": len(rows),
        "poll_ms": args.poll_ms,
        "statuses": sorted({r["status"] for r in rows}),
        "c_store_ack": summary("ack_s"),
        "c_store_to_sr_in_pacs": summary("sr_s"),
        "c_store_to_sr_and_sc_in_pacs": summary("both_s"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "films": "manifest test split, interleaved kermany/nih/covid-rdb, as 8-bit CR",
        "rows": rows,
    }
    out = REPO / "bench" / "results" / f"dicom_roundtrip{'_burst' if args.burst else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"| {result['mode']}, {len(rows)} studies | p50 | p95 | max |\n|---|---|---|---|")
    for label, key in (
        ("C-STORE response", "c_store_ack"),
        ("C-STORE to SR in PACS", "c_store_to_sr_in_pacs"),
        ("C-STORE to SR + SC in PACS", "c_store_to_sr_and_sc_in_pacs"),
    ):
        s = result[key]
        print(f"| {label} | {s['p50_ms']:.0f} ms | {s['p95_ms']:.0f} ms | {s['max_ms']:.0f} ms |")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
