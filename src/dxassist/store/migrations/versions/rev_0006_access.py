"""login rate limit (login_failure), scoped API tokens (api_token.scopes)

Revision ID: 0006
Revises: 0005 (re-chain after 0005, the audit trail, when both are merged)
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username_hash", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
    )
    op.create_index("ix_login_failure_at", "login_failure", ["at"])
    op.create_index("ix_login_failure_username_hash", "login_failure", ["username_hash"])
    op.create_index("ix_login_failure_client", "login_failure", ["client"])


def downgrade() -> None:
    op.drop_table("login_failure")
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("scopes")
