"""create the study table

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("received", "analysing", "ready", "failed")


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                *STATUSES,
                name="study_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("original_filename", sa.Text(), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(16), nullable=True),
        sa.Column("view", sa.String(16), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("study_instance_uid", sa.String(64), nullable=True),
        sa.Column("series_instance_uid", sa.String(64), nullable=True),
        sa.Column("sop_instance_uid", sa.String(64), nullable=True),
        sa.Column("probabilities", sa.JSON(), nullable=True),
        sa.Column("abnormal", sa.Float(), nullable=True),
        sa.Column("priority", sa.String(16), nullable=True),
        sa.Column("top_finding", sa.String(64), nullable=True),
        sa.Column("heatmap_path", sa.Text(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=True),
        sa.Column("model_name", sa.String(128), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
    )
    op.create_index("ix_study_created_at", "study", ["created_at"])
    op.create_index("ix_study_status", "study", ["status"])


def downgrade() -> None:
    op.drop_index("ix_study_status", table_name="study")
    op.drop_index("ix_study_created_at", table_name="study")
    op.drop_table("study")
