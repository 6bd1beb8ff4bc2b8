"""docs/deidentification.md is what the code does (regenerate: scripts/gen_deid_docs.py)."""

from __future__ import annotations

from pathlib import Path

from dxassist.privacy.deid_docs import render_markdown
from dxassist.privacy.deid_table import BASIC_PROFILE

DOC = Path(__file__).resolve().parents[2] / "docs" / "deidentification.md"


def test_docs_are_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/deidentification.md is out of date: run scripts/gen_deid_docs.py"
    )


def test_docs_list_every_attribute() -> None:
    rows = [line for line in render_markdown().splitlines() if line.startswith("| (")]
    assert len(rows) == len(BASIC_PROFILE)
    assert any(row.startswith("| (0010,0010) | Patient's Name |") for row in rows)
    assert any(row.startswith("| (60xx,3000) | Overlay Data |") for row in rows)
