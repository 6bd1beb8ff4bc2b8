"""clinician and researcher roles

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("radiologist", "admin")
NEW = (*OLD, "clinician", "researcher")


def _role(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name="user_role", native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.alter_column("role", existing_type=_role(OLD), type_=_role(NEW))


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.alter_column("role", existing_type=_role(NEW), type_=_role(OLD))
