"""the 'quarantined' study status (burned-in annotation held for an administrator)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("received", "analysing", "ready", "failed", "skipped")
NEW = (*OLD, "quarantined")


def _status(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *values, name="study_status", native_enum=False, create_constraint=True, length=16
    )


def upgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.alter_column("status", existing_type=_status(OLD), type_=_status(NEW))


def downgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.alter_column("status", existing_type=_status(NEW), type_=_status(OLD))
