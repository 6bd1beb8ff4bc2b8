"""DICOM integration: study source and calling AE, the 'skipped' status, result deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("received", "analysing", "ready", "failed")
NEW_STATUSES = (*OLD_STATUSES, "skipped")


def _status(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *values, name="study_status", native_enum=False, create_constraint=True, length=16
    )


def upgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="upload")
        )
        batch.add_column(sa.Column("calling_ae", sa.String(16), nullable=True))
        batch.alter_column(
            "status", existing_type=_status(OLD_STATUSES), type_=_status(NEW_STATUSES)
        )
    with op.batch_alter_table("study") as batch:
        batch.alter_column("source", server_default=None)
    op.create_index("ix_study_sop_instance_uid", "study", ["sop_instance_uid"])
    op.create_table(
        "delivery",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "study_id",
            sa.String(36),
            sa.ForeignKey("study.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("destination", sa.String(300), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                name="delivery_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("study_id", "destination", name="uq_delivery_dest"),
    )
    op.create_index("ix_delivery_study_id", "delivery", ["study_id"])
    op.create_index("ix_delivery_status", "delivery", ["status"])
    op.create_index("ix_delivery_next_attempt_at", "delivery", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_next_attempt_at", table_name="delivery")
    op.drop_index("ix_delivery_status", table_name="delivery")
    op.drop_index("ix_delivery_study_id", table_name="delivery")
    op.drop_table("delivery")
    op.drop_index("ix_study_sop_instance_uid", table_name="study")
    with op.batch_alter_table("study") as batch:
        batch.alter_column(
            "status", existing_type=_status(NEW_STATUSES), type_=_status(OLD_STATUSES)
        )
        batch.drop_column("calling_ae")
        batch.drop_column("source")
