"""Feature flags: a minimal registry so the cohort rules of spec 8.2 can be enforced.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

A frozen copy of the table as shipped (it does not import ``cohort_pipeline.store.schema``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feature_flags",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("name", sa.String(400), nullable=False, server_default=""),
        sa.Column("filters", _JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("updated_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feature_flags"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_feature_flags_project_id_projects", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_feature_flags_project_id", "feature_flags", ["project_id"])


def downgrade() -> None:
    op.drop_table("feature_flags")
