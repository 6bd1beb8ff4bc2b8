"""Write docs/deidentification.md from the de-identification code and its table.

    PYTHONPATH=src /work/main/.venv/bin/python scripts/gen_deid_docs.py

tests/privacy/test_deid_docs.py fails when the committed file differs from this output.
"""

from __future__ import annotations

from pathlib import Path

from dxassist.privacy.deid_docs import render_markdown

OUT = Path(__file__).resolve().parents[1] / "docs" / "deidentification.md"

if __name__ == "__main__":
    OUT.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {OUT}")
