"""Throughput and latency of the diagnostic assistant (issue 8).

1. In-process: opinions per second on one thread (``Assistant.opinion``: differential,
   evidence for/against, next questions by information gain), for each dataset, on the
   test cases' explicit symptoms; and for free text (MZ-4 self-reports, Chinese).
2. Over HTTP: a real ``dxassist serve`` (uvicorn, one process) in a subprocess on a free
   loopback port with its own temporary data folder; a user and API token made through the
   CLI; then an open-loop async client (httpx) sends ``POST /api/v1/assist`` at a fixed
   rate (default 200 requests/s for 30 s), each request at its scheduled time whether or
   not earlier ones have finished. Latency is measured from the scheduled send time (so a
   stalled server cannot hide queueing), p50 / p95 / p99 / max, and errors are counted.
   A warm-up run at the same rate comes first and is reported separately (the first
   second of a fresh server and client has a one-off stall of ~150 ms while the
   connection pool fills).
   Bodies cycle through MZ-10 structured cases, MZ-4 self-report texts and DDXPlus cases.

The client runs on the same 2-core machine as the server, so it takes CPU from it; the
load average before and after is recorded. Results: bench/results/assist_throughput.json.

    python bench/assist_throughput.py [--rate 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from dxassist.assistant import data
from dxassist.assistant.data import VALUE_NAMES
from dxassist.assistant.engine import get_assistant

SERVE = "from dxassist.cli import main; raise SystemExit(main())"
PASSWORD = "assist throughput bench"
CONNECTIONS = 32
OUT = Path(__file__).resolve().parent / "results" / "assist_throughput.json"


def bodies() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    mz10 = data.load("mz10").test
    vocab = set(get_assistant("mz10").model.symptoms)
    mz4 = [c for c in data.load("mz4").test if c.text]
    ddx = data.load("ddxplus").test
    for i in range(600):
        c = mz10[i % len(mz10)]
        out.append(
            {
                "dataset": "mz10",
                "symptoms": {s: VALUE_NAMES[v] for s, v in c.explicit.items() if s in vocab},
            }
        )
        if i % 2 == 0:
            t = mz4[i % len(mz4)]
            out.append({"dataset": "mz4", "text": t.text})
        else:
            d = ddx[i % len(ddx)]
            out.append(
                {"dataset": "ddxplus", "symptoms": {s: "yes" for s in d.explicit}, "age": d.age}
            )
    return out


def in_process(seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in data.DATASETS:
        a = get_assistant(name)
        cases = data.load(name).test
        known = a.model.sym_index
        reqs = [{s: VALUE_NAMES[v] for s, v in c.explicit.items() if s in known} for c in cases]
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a.opinion(reqs[n % len(reqs)])
            n += 1
        results[name] = round(n / (time.perf_counter() - t0), 1)
    a = get_assistant("mz4")
    texts = [c.text for c in data.load("mz4").test if c.text]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a.opinion(None, texts[n % len(texts)])
        n += 1
    results["mz4 free text (Chinese self-reports)"] = round(n / (time.perf_counter() - t0), 1)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port = tmp, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DXASSIST_")}
        self.env["DXASSIST_DATA_DIR"] = str(tmp / "data")
        for key in ("DXASSIST_MODELS_DIR", "DXASSIST_SYMPTOM_DATA", "DXASSIST_SHARED_DATA"):
            if key in os.environ:
                self.env[key] = os.environ[key]
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-c", SERVE, *args], input=stdin, capture_output=True, text=True,
            env=self.env, cwd=self.tmp, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"dxassist {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def start(self) -> str:
        log = (self.tmp / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode} at start")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready within 120 s")
            time.sleep(0.2)
        self.cli("user", "add", "bench", "--role", "admin", "--password-stdin", stdin=PASSWORD)
        return self.cli("token", "create", "bench", "--name", "assist-bench").strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def open_loop(
    base: str, token: str, reqs: list[dict[str, Any]], rate: float, seconds: float
) -> dict[str, Any]:
    n = int(rate * seconds)
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []  # (seconds into the run, latency) of slow requests
    errors: dict[str, int] = {}
    # a bounded keep-alive pool, as a gateway in front of the service would hold; a request
    # that waits for a connection still counts its wait (latency from the scheduled time)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as c:
        for body in reqs[:20]:  # warm-up: load every model once
            await c.post("/api/v1/assist", json=body)
        start = time.perf_counter() + 0.5
        late = 0

        async def one(i: int, scheduled: float) -> None:
            try:
                r = await c.post("/api/v1/assist", json=reqs[i % len(reqs)])
                if r.status_code != 200:
                    errors[f"HTTP {r.status_code}"] = errors.get(f"HTTP {r.status_code}", 0) + 1
                    return
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            took = time.perf_counter() - scheduled
            latencies.append(took)
            if took > 0.05:
                slow.append((round(scheduled - start, 2), round(took * 1000, 1)))

        # one scheduler spawns each request at its time (no thousands of sleeping tasks, whose
        # garbage collection would stall the client and show up as server latency)
        gc.collect()
        gc.freeze()
        tasks = set()
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                late += 1
            task = asyncio.create_task(one(i, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
        wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "rate_target_per_s": rate,
        "seconds": seconds,
        "requests": n,
        "ok": len(latencies),
        "errors": errors,
        "sent_more_than_5ms_late_by_client": late,
        "achieved_rate_per_s": round(len(latencies) / wall, 1),
        "slow_over_50ms_at_seconds_into_run": sorted(slow)[:200],
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 2),
            "p95": round(float(np.percentile(lat, 95)), 2),
            "p99": round(float(np.percentile(lat, 99)), 2),
            "max": round(float(lat.max()), 2),
        }
        if len(lat)
        else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--in-process-seconds", type=float, default=3.0)
    ap.add_argument(
        "--warmup-seconds",
        type=float,
        default=5.0,
        help="an unmeasured run at the same rate first (connections, caches); reported apart",
    )
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": [round(x, 2) for x in load_before],
    }
    result["in_process_opinions_per_s_one_thread"] = in_process(args.in_process_seconds)
    print(json.dumps(result["in_process_opinions_per_s_one_thread"], ensure_ascii=False))
    reqs = bodies()
    with tempfile.TemporaryDirectory(prefix="dxassist-assist-bench-") as tmp:
        server = Server(Path(tmp))
        try:
            token = server.start()
            if args.warmup_seconds > 0:
                result["http_warmup"] = asyncio.run(
                    open_loop(server.base, token, reqs, args.rate, args.warmup_seconds)
                )
            result["http"] = asyncio.run(
                open_loop(server.base, token, reqs, args.rate, args.seconds)
            )
        finally:
            server.stop()
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["notes"] = (
        "client and server share the 2-core machine (shared with other engineers); one "
        "uvicorn process; every request authenticated by API token (a database lookup); "
        "latency from the scheduled send time"
    )
    print(json.dumps(result["http"], ensure_ascii=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
