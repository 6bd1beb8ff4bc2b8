"""Cost of the audit trail: appends per second (one thread, and four threads sharing the
process lock) and `verify` time, on a fresh SQLite file and, if reachable, a fresh
PostgreSQL schema ($DXASSIST_TEST_POSTGRES_URL, as the tests use).

    python bench/audit_append.py [--n 2000]

Results: bench/results/audit_append.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from dxassist.audit.trail import Action, record, verify
from dxassist.config import default_database_url
from dxassist.store import make_engine, make_session_factory, upgrade_to_head

PG = os.environ.get(
    "DXASSIST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def measure(url: str, n: int) -> dict[str, Any]:
    upgrade_to_head(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        with sessions() as s:
            t0 = time.perf_counter()
            for i in range(n):
                record(s, Action.STUDY_VIEW, actor="bench", study_id=str(i), client="127.0.0.1")
            one = time.perf_counter() - t0

        def work() -> None:
            with sessions() as s:
                for i in range(n // 4):
                    record(s, Action.IMAGE_VIEW, actor="bench", study_id=str(i))

        threads = [threading.Thread(target=work) for _ in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        four = time.perf_counter() - t0
        with sessions() as s:
            t0 = time.perf_counter()
            result = verify(s)
            check = time.perf_counter() - t0
        assert result.intact, result.problem
        return {
            "appends_per_s_one_thread": round(n / one, 1),
            "appends_per_s_four_threads": round(4 * (n // 4) / four, 1),
            "verify_entries": result.count,
            "verify_s": round(check, 3),
            "verify_entries_per_s": round(result.count / check, 1),
        }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    out: dict[str, Any] = {"n": args.n, "machine": platform.platform(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = measure(default_database_url(Path(tmp)), args.n)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        out["postgresql"] = f"not reachable: {type(exc).__name__}"
    else:
        try:
            out["postgresql"] = measure(f"{PG}?options=-csearch_path%3D{schema}", args.n)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    print(json.dumps(out, indent=2))
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "audit_append.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
