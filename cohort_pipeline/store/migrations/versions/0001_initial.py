"""Initial schema: projects, cohorts, static members, versioned memberships, calculation history, API keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

A frozen copy of the schema: it deliberately does not import ``cohort_pipeline.store.schema``, so later edits
to the runtime metadata cannot change what this migration creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_INSTANT = sa.DateTime(timezone=True)
_EMPTY_JSON_LIST = sa.text("'[]'")
_PERSON_ID = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("test_account_filters", _JSON, nullable=False, server_default=_EMPTY_JSON_LIST),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
    )
    op.create_table(
        "cohorts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("name", sa.String(400), nullable=True),
        sa.Column("description", sa.String(1000), nullable=False, server_default=""),
        sa.Column("filters", _JSON, nullable=True),
        sa.Column("query", _JSON, nullable=True),
        sa.Column("groups", _JSON, nullable=False, server_default=_EMPTY_JSON_LIST),
        sa.Column("is_static", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("pending_version", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("is_calculating", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_calculation", _INSTANT, nullable=True),
        sa.Column("errors_calculating", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error_at", _INSTANT, nullable=True),
        sa.Column("last_calculation_duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("calculation_requested_at", _INSTANT, nullable=True),
        sa.Column("cohort_type", sa.String(32), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("updated_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cohorts"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_cohorts_project_id_projects", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_cohorts_project_id", "cohorts", ["project_id"])
    op.create_table(
        "static_members",
        sa.Column("cohort_id", _ID, nullable=False),
        sa.Column("person_id", _PERSON_ID, nullable=False),
        sa.Column("added_at", _INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("cohort_id", "person_id", name="pk_static_members"),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name="fk_static_members_cohort_id_cohorts", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "memberships",
        sa.Column("cohort_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", _PERSON_ID, nullable=False),
        sa.PrimaryKeyConstraint("cohort_id", "version", "person_id", name="pk_memberships"),
    )
    op.create_table(
        "calculation_history",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("cohort_id", _ID, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("filters", _JSON, nullable=True),
        sa.Column("started_at", _INSTANT, nullable=False),
        sa.Column("finished_at", _INSTANT, nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("entered", sa.Integer(), nullable=True),
        sa.Column("exited", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calculation_history"),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name="fk_calculation_history_cohort_id_cohorts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_calculation_history_project_id_projects", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_calculation_history_cohort_id_started_at", "calculation_history", ["cohort_id", "started_at"]
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("label", sa.String(400), nullable=False, server_default=""),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", _JSON, nullable=False, server_default=_EMPTY_JSON_LIST),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("revoked_at", _INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_api_keys_project_id_projects", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_api_keys_project_id", "api_keys", ["project_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("calculation_history")
    op.drop_table("memberships")
    op.drop_table("static_members")
    op.drop_table("cohorts")
    op.drop_table("projects")
