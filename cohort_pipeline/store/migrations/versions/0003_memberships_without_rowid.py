"""Memberships as a ``WITHOUT ROWID`` table on SQLite (PostgreSQL: no change).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

``memberships`` is the hot table: every publish writes a full version of a cohort (a million rows and more) and
deletes the version before it, always by ranges of its primary key ``(cohort_id, version, person_id)``. As an
ordinary (rowid) SQLite table every row lives twice, in the table and in the primary-key index, and every insert
and delete maintains both. ``WITHOUT ROWID`` makes the primary key the table itself: one b-tree, half the pages
written, and old versions deleted in about half the time (measured at 1.5M rows over 12 cohorts: delete 1.2 s ->
0.6 s, insert 1.9 s -> 1.6 s, file 295 -> 143 MiB). Readers are unchanged: they already read by key ranges.

SQLite cannot change this on an existing table, so the table is rebuilt (rows copied in key order) inside the
migration's transaction. A frozen copy of the columns: it does not import ``cohort_pipeline.store.schema``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_PERSON_ID = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
_COLUMNS = "cohort_id, version, person_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_memberships(with_rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_memberships(with_rowid=True)


def _rebuild_memberships(*, with_rowid: bool) -> None:
    op.create_table(
        "memberships_rebuilt",
        sa.Column("cohort_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", _PERSON_ID, nullable=False),
        sa.PrimaryKeyConstraint("cohort_id", "version", "person_id", name="pk_memberships"),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(f"INSERT INTO memberships_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM memberships ORDER BY {_COLUMNS}")
    op.drop_table("memberships")
    op.rename_table("memberships_rebuilt", "memberships")
