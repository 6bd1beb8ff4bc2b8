"""Service load: N concurrent clients upload real images over loopback for a bounded time.

For each client count (default 1, 4 and 16) a fresh `dxassist serve` is started as a
subprocess on a free loopback port with its own temporary DXASSIST_DATA_DIR (SQLite inside,
so no queue or deduplication carries over between levels); a user and an API token are
created through the CLI with the same environment. Each client is a thread with its own
httpx.Client running a closed loop for `--seconds`: POST one image to /api/v1/studies
(t0 taken just before the POST), then poll GET /api/v1/studies/{id} every `--poll-ms`
until the study is ready or failed, then the next image. When the time is up the clients
upload nothing more and wait (at most `--drain-timeout` s) for the study they have in
flight; studies still not done then are counted as unfinished. Before timing, one study
(the pool's last image, not counted) goes through the whole path to warm the server up.

Images: distinct files (byte-identical ones dropped, since the service deduplicates them)
of the manifest's test split, shuffled (fixed seed) and interleaved in proportion across
its datasets so that every level sees about the split's mix whatever it uploads, plus the two
real DICOMs once per level: the PA chest CR from pydicom-data (RG1_UNCR.dcm) and the NIH
DX in shared/data/cxr/dicom. Nothing is copied into the repository.

Reported per level: uploads (POSTs sent), ready, failed, unfinished, errors by kind
(non-2xx, transport errors, failed studies, timeouts), studies/s (ready studies / time
from the first upload to the last ready seen), the POST's own latency and upload-to-ready
p50/p95/p99 as the client saw it (resolution: the poll interval), and the same from the
server's timestamps (t0 to the study's updated_at when it became ready; same clock), and
the GET polls/s the clients made with the GET's p50 latency.

Read the numbers with this in mind: the service has ONE in-process analysis worker that
analyses one study at a time, and this machine has 2 cores shared by the server, the
worker and the benchmark's own clients. With N closed-loop clients up to N studies queue
behind that worker, so at 4 and 16 clients upload-to-ready is dominated by queueing
(roughly N x the per-study service time), not by the analysis itself. The worker is a
thread in the server process, so fast polling (50 ms by default, far faster than the
worklist page's few seconds) takes CPU from it: see --poll-ms.

    python bench/service_load.py [--clients 1,4,16] [--seconds 60] [--poll-ms 50]
        [--drain-timeout 120] [--manifest PATH] [--no-dicom]

Writes bench/results/service_load.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-load-password-not-secret"
SERVE = "from dxassist.cli import main; raise SystemExit(main())"
MIME = {
    ".png": "image/png",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".dcm": "application/dicom",
}
#: server log lines worth showing even when nothing failed
LOG_ALERT = re.compile(r"\b(ERROR|WARNING|CRITICAL|Traceback)\b|locked|OperationalError", re.I)


def shared_data() -> Path:
    shared = os.environ.get("DXASSIST_SHARED_DATA")
    return Path(shared) if shared else REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Image:
    path: Path
    dataset: str
    data: bytes

    @property
    def mime(self) -> str:
        return MIME.get(self.path.suffix.lower(), "application/octet-stream")


def image_pool(manifest: Path, with_dicom: bool, seed: int = 0) -> list[Image]:
    """Distinct (by bytes) test-split images, datasets interleaved, DICOMs near the front."""
    from dxassist.cxr.manifest import read_manifest

    rows = [r for r in read_manifest(manifest) if r.split == "test"]
    by_dataset: dict[str, list[Any]] = {}
    for r in sorted(rows, key=lambda r: str(r.path)):
        by_dataset.setdefault(r.dataset, []).append(r)
    rng = random.Random(seed)
    for group in by_dataset.values():
        rng.shuffle(group)
    # proportional interleave: every prefix of the pool (what one level uses) has about
    # the split's dataset mix, so levels that upload different numbers see the same mix
    keyed = [
        ((k + 0.5) / len(group), name, r)
        for name, group in by_dataset.items()
        for k, r in enumerate(group)
    ]
    order = [r for _, _, r in sorted(keyed, key=lambda t: (t[0], t[1]))]
    seen: set[str] = set()
    pool: list[Image] = []

    def add(path: Path, dataset: str, at: int | None = None) -> None:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            return
        seen.add(digest)
        img = Image(path, dataset, data)
        if at is None:
            pool.append(img)
        else:
            pool.insert(at, img)

    for r in order:
        add(r.path, r.dataset)
    if with_dicom:
        from pydicom.data import get_testdata_file

        add(Path(str(get_testdata_file("RG1_UNCR.dcm"))), "pydicom-data CR", at=2)
        dx = shared_data() / "cxr" / "dicom" / "nih_cxr14_no_finding_DX.dcm"
        if dx.is_file():
            add(dx, "nih DX dicom", at=5)
    return pool


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def parse_ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Record:
    dataset: str
    file: str
    t0_wall: float
    t0: float
    upload_ms: float | None = None
    study_id: str | None = None
    duplicate: bool = False
    status: str = "not uploaded"
    ready_ms: float | None = None  # as the client saw it (poll resolution)
    server_ready_ms: float | None = None  # t0 to updated_at of the ready study
    server_received_to_ready_ms: float | None = None
    t_done: float | None = None
    failure_reason: str | None = None


@dataclass
class Level:
    clients: int
    seconds: float
    poll_s: float
    drain_timeout_s: float
    records: list[Record] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    pool_exhausted: bool = False
    poll_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str, example: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.error_examples.setdefault(kind, example[:500])


class Server:
    """`dxassist serve` in a subprocess with its own data folder; log in a temp file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DXASSIST_")}
        self.env["DXASSIST_DATA_DIR"] = str(tmp / "data")
        if "DXASSIST_DATABASE_URL" in os.environ:
            raise SystemExit("unset DXASSIST_DATABASE_URL: each level needs a fresh database")
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_info: dict[str, Any] = {}

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-c", SERVE, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.tmp,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dxassist {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def start(self) -> str:
        """Start, wait for /readyz, create a user and return an API token."""
        with self.log_path.open("wb") as log:
            cmd = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1"]
            self.proc = subprocess.Popen(
                [*cmd, "--port", str(self.port)],
                env=self.env,
                cwd=self.tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} at start")
            try:
                r = httpx.get(f"{self.base}/readyz", timeout=2)
                if r.status_code == 200:
                    self.ready_info = r.json()
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 120 s")
            time.sleep(0.2)
        self.cli("user", "add", "bench", "--role", "admin", "--password-stdin", stdin=PASSWORD)
        return self.cli("token", "create", "bench", "--name", "service-load").strip()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="backslashreplace")
        except OSError:
            return ""


def client_loop(
    level: Level, base: str, token: str, next_image: Any, start: float, end: float
) -> None:
    drain_deadline = end + level.drain_timeout_s
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        while time.perf_counter() < end:
            img = next_image()
            if img is None:
                return
            rec = Record(img.dataset, img.path.name, time.time(), time.perf_counter())
            with level.lock:
                level.records.append(rec)
            try:
                r = http.post(
                    "/api/v1/studies", files=[("files", (img.path.name, img.data, img.mime))]
                )
            except httpx.HTTPError as exc:
                rec.status = "upload error"
                level.error(f"upload {type(exc).__name__}", f"{img.path.name}: {exc}")
                continue
            rec.upload_ms = (time.perf_counter() - rec.t0) * 1e3
            if r.status_code != 202:
                rec.status = f"upload HTTP {r.status_code}"
                level.error(f"upload HTTP {r.status_code}", f"{img.path.name}: {r.text}")
                continue
            study = r.json()["studies"][0]
            rec.study_id, rec.duplicate, rec.status = study["id"], study["duplicate"], "received"
            if rec.duplicate:
                level.error("duplicate (deduplicated upload)", f"{img.path.name}: {study['id']}")
            while True:
                time.sleep(level.poll_s)
                if time.perf_counter() > drain_deadline:
                    rec.status = "unfinished"
                    level.error("timeout (not done by the drain deadline)", rec.study_id)
                    break
                tp = time.perf_counter()
                try:
                    g = http.get(f"/api/v1/studies/{rec.study_id}")
                except httpx.HTTPError as exc:
                    level.error(f"poll {type(exc).__name__}", f"{rec.study_id}: {exc}")
                    continue
                finally:
                    level.poll_ms.append((time.perf_counter() - tp) * 1e3)
                if g.status_code != 200:
                    level.error(f"poll HTTP {g.status_code}", f"{rec.study_id}: {g.text}")
                    continue
                body = g.json()
                rec.status = body["status"]
                if rec.status not in ("ready", "failed"):
                    continue
                rec.t_done = time.perf_counter()
                rec.ready_ms = (rec.t_done - rec.t0) * 1e3
                updated, received = parse_ts(body.get("updated_at")), parse_ts(body["received_at"])
                if updated is not None:
                    rec.server_ready_ms = (updated - rec.t0_wall) * 1e3
                    if received is not None:
                        rec.server_received_to_ready_ms = (updated - received) * 1e3
                if rec.status == "failed":
                    rec.failure_reason = body.get("failure_reason")
                    level.error("study failed", f"{img.path.name}: {rec.failure_reason}")
                break


def warm_up(base: str, token: str, img: Image) -> None:
    """One study through the whole path before timing (first inference allocates arenas)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        r = http.post("/api/v1/studies", files=[("files", (img.path.name, img.data, img.mime))])
        r.raise_for_status()
        study_id = r.json()["studies"][0]["id"]
        deadline = time.monotonic() + 60
        while http.get(f"/api/v1/studies/{study_id}").json()["status"] not in ("ready", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up study {study_id} not done within 60 s")
            time.sleep(0.05)


def run_level(pool: list[Image], clients: int, args: argparse.Namespace) -> dict[str, Any]:
    level = Level(clients, args.seconds, args.poll_ms / 1e3, args.drain_timeout)
    warm, pool = pool[-1], pool[:-1]
    it = iter(pool)
    it_lock = threading.Lock()

    def next_image() -> Image | None:
        with it_lock:
            img = next(it, None)
        if img is None:
            level.pool_exhausted = True
        return img

    with tempfile.TemporaryDirectory(prefix="dxassist-load-") as d:
        server = Server(Path(d))
        failed = True
        try:
            token = server.start()
            warm_up(server.base, token, warm)
            start = time.perf_counter()
            end = start + args.seconds
            threads = [
                threading.Thread(
                    target=client_loop,
                    args=(level, server.base, token, next_image, start, end),
                    name=f"client-{i}",
                )
                for i in range(clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            finished = time.perf_counter()
            failed = False
        finally:
            code = server.stop()
            log = server.log()
            if failed:
                print(f"--- server log ({server.log_path}) ---\n{log}", file=sys.stderr)
    alerts = [line for line in log.splitlines() if LOG_ALERT.search(line)]
    return summarise(level, start, end, finished, code, alerts, server.ready_info)


def summarise(
    level: Level,
    start: float,
    end: float,
    finished: float,
    server_exit: int | None,
    alerts: list[str],
    ready_info: dict[str, Any],
) -> dict[str, Any]:
    recs = level.records
    ready = [r for r in recs if r.status == "ready"]
    upload = [r.upload_ms for r in recs if r.upload_ms is not None and r.study_id]
    lat = [r.ready_ms for r in ready if r.ready_ms is not None]
    srv = [r.server_ready_ms for r in ready if r.server_ready_ms is not None]
    srv_rr = [
        r.server_received_to_ready_ms for r in ready if r.server_received_to_ready_ms is not None
    ]
    first = min((r.t0 for r in recs), default=start)
    last = max((r.t_done for r in ready if r.t_done is not None), default=first)
    span = last - first
    return {
        "clients": level.clients,
        "seconds": level.seconds,
        "poll_ms": level.poll_s * 1e3,
        "uploads": len(recs),
        "accepted": sum(1 for r in recs if r.study_id),
        "ready": len(ready),
        "failed": sum(1 for r in recs if r.status == "failed"),
        "unfinished": sum(1 for r in recs if r.status == "unfinished"),
        "errors": sum(level.errors.values()),
        "errors_by_kind": dict(level.errors),
        "error_examples": level.error_examples,
        "pool_exhausted": level.pool_exhausted,
        "by_dataset": {
            ds: {
                "uploads": sum(1 for r in recs if r.dataset == ds),
                "ready": sum(1 for r in ready if r.dataset == ds),
                "received_to_ready_server_ms_p50": pct(
                    [
                        r.server_received_to_ready_ms
                        for r in ready
                        if r.dataset == ds and r.server_received_to_ready_ms is not None
                    ],
                    50,
                ),
            }
            for ds in sorted({r.dataset for r in recs})
        },
        "studies_per_s": len(ready) / span if span > 0 else None,
        "first_upload_to_last_ready_s": span,
        "drain_s": finished - end,
        "polls": len(level.poll_ms),
        "polls_per_s": len(level.poll_ms) / (finished - start) if finished > start else None,
        "poll_latency_ms": {"p50": pct(level.poll_ms, 50), "p95": pct(level.poll_ms, 95)},
        "upload_ms": {"p50": pct(upload, 50), "p95": pct(upload, 95), "p99": pct(upload, 99)},
        "upload_to_ready_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99)},
        "upload_to_ready_server_ms": {
            "p50": pct(srv, 50),
            "p95": pct(srv, 95),
            "p99": pct(srv, 99),
        },
        "received_to_ready_server_ms": {"p50": pct(srv_rr, 50), "p95": pct(srv_rr, 95)},
        "server_exit_code": server_exit,
        "server_log_alerts": alerts[:200],
        "server_log_alert_count": len(alerts),
        "readyz": ready_info,
        "failures": [
            {"file": r.file, "dataset": r.dataset, "reason": r.failure_reason}
            for r in recs
            if r.status == "failed"
        ],
    }


def env_info(results: list[dict[str, Any]]) -> dict[str, Any]:
    import onnxruntime

    from dxassist import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    model = results[0]["readyz"].get("checks", {}).get("model") if results else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "httpx": httpx.__version__,
        "dxassist": __version__,
        "model": model,
    }


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    header = (
        "| clients | uploads | ready | failed | unfinished | errors | studies/s | "
        "upload p50 ms | upload-to-ready p50 / p95 / p99 ms | "
        "server-stamped upload-to-ready p50 / p95 / p99 ms | polls/s (GET p50 ms) |"
    )
    lines = [header, "|" + "---|" * 11]
    for r in results:
        u, s = r["upload_to_ready_ms"], r["upload_to_ready_server_ms"]
        lines.append(
            f"| {r['clients']} | {r['uploads']} | {r['ready']} | {r['failed']} | "
            f"{r['unfinished']} | {r['errors']} | {fmt(r['studies_per_s'], 1)} | "
            f"{fmt(r['upload_ms']['p50'], 1)} | "
            f"{fmt(u['p50'])} / {fmt(u['p95'])} / {fmt(u['p99'])} | "
            f"{fmt(s['p50'])} / {fmt(s['p95'])} / {fmt(s['p99'])} | "
            f"{fmt(r['polls_per_s'])} ({fmt(r['poll_latency_ms']['p50'], 1)}) |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,4,16", help="comma-separated client counts")
    ap.add_argument("--seconds", type=float, default=60.0, help="upload time per level")
    ap.add_argument("--poll-ms", type=float, default=50.0, help="study poll interval")
    ap.add_argument("--drain-timeout", type=float, default=120.0, help="max wait after the time")
    ap.add_argument("--manifest", type=Path, default=shared_data() / "cxr" / "manifest.csv")
    ap.add_argument("--no-dicom", action="store_true", help="leave out the two real DICOMs")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "service_load.json")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if not levels or min(levels) < 1:
        ap.error("--clients needs positive integers, e.g. 1,4,16")

    t_all = time.perf_counter()
    pool = image_pool(args.manifest, with_dicom=not args.no_dicom)
    print(f"{len(pool)} distinct images: {dict(Counter(i.dataset for i in pool))}", file=sys.stderr)
    results = []
    for n in levels:
        print(f"level: {n} client(s) for {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
        r = run_level(pool, n, args)
        results.append(r)
        print(
            f"  {r['uploads']} uploads, {r['ready']} ready, {r['errors']} errors "
            f"{r['errors_by_kind'] or ''}, drain {r['drain_s']:.1f} s, {r['polls_per_s']:.0f} "
            f"polls/s (GET p50 {fmt(r['poll_latency_ms']['p50'], 1)} ms), "
            f"{r['server_log_alert_count']} server log alert line(s)",
            file=sys.stderr,
            flush=True,
        )
    total_s = time.perf_counter() - t_all
    env = env_info(results)
    text = table(results)
    print(text)
    print(
        f"\n(closed loop: each client uploads, polls every {args.poll_ms:.0f} ms until ready, "
        "repeats; one in-process worker analyses one study at a time, so at 4 and 16 clients "
        "upload-to-ready is mostly queueing behind it; server-stamped = t0 to the study's "
        f"updated_at; total run {total_s:.0f} s; {env})"
    )
    for r in results:
        if r["errors_by_kind"]:
            print(f"\n{r['clients']} client(s) errors: {r['errors_by_kind']}")
            for kind, example in r["error_examples"].items():
                print(f"  e.g. {kind}: {example}")
        if r["pool_exhausted"]:
            print(f"\n{r['clients']} client(s): ran out of distinct images before the time")
        if r["server_log_alerts"]:
            print(f"\n{r['clients']} client(s) server log ({r['server_log_alert_count']} lines):")
            for line in r["server_log_alerts"][:30]:
                print(f"  {line}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "env": env,
                "config": {**{k: str(v) for k, v in vars(args).items()}, "images": len(pool)},
                "total_run_s": total_s,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
