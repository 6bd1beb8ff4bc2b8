"""accounts, sessions, API tokens, reviews; study patient key/age/sex, heatmap finding

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("radiologist", "admin")


def upgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.add_column(sa.Column("patient_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("patient_age_years", sa.Float(), nullable=True))
        batch.add_column(sa.Column("patient_sex", sa.String(16), nullable=True))
        batch.add_column(sa.Column("heatmap_finding", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_study_patient_key", "study", ["patient_key"])
    op.create_index("ix_study_reviewed_at", "study", ["reviewed_at"])
    op.create_index("ix_study_sha256", "study", ["sha256"], unique=True)

    op.create_table(
        "app_user",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(*ROLES, name="user_role", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_session_user_id", "web_session", ["user_id"])
    op.create_index("ix_web_session_expires_at", "web_session", ["expires_at"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "review",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "study_id",
            sa.String(36),
            sa.ForeignKey("study.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reviewer_id", sa.String(36), sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("agrees_with_ai", sa.Boolean(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_review_study_id", "review", ["study_id"])
    op.create_index("ix_review_reviewer_id", "review", ["reviewer_id"])


def downgrade() -> None:
    op.drop_index("ix_review_reviewer_id", table_name="review")
    op.drop_index("ix_review_study_id", table_name="review")
    op.drop_table("review")
    op.drop_index("ix_api_token_user_id", table_name="api_token")
    op.drop_table("api_token")
    op.drop_index("ix_web_session_expires_at", table_name="web_session")
    op.drop_index("ix_web_session_user_id", table_name="web_session")
    op.drop_table("web_session")
    op.drop_table("app_user")
    op.drop_index("ix_study_sha256", table_name="study")
    op.drop_index("ix_study_reviewed_at", table_name="study")
    op.drop_index("ix_study_patient_key", table_name="study")
    with op.batch_alter_table("study") as batch:
        batch.drop_column("reviewed_at")
        batch.drop_column("heatmap_finding")
        batch.drop_column("patient_sex")
        batch.drop_column("patient_age_years")
        batch.drop_column("patient_key")
