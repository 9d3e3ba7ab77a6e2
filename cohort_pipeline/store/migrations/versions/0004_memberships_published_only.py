"""Memberships keep only the published members: ``(cohort_id, person_id)``, without a version column.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Until 0003 every publish wrote a full new version of a dynamic cohort's rows, counted entered/exited against the
previous version in SQL and then deleted the previous version: about 3 s per recalculation of 1.5M members even
when nobody changed. From 0004 the table holds one row per member of the *published* version only, and a publish
inserts who entered and deletes who left in the transaction that flips ``cohorts.version``, so the version number
is no longer needed on the rows (it lives in ``cohorts.version`` and in the calculation history).

Upgrade: the table is rebuilt with the primary key ``(cohort_id, person_id)`` (``WITHOUT ROWID`` on SQLite, as
0003), keeping only the rows of each cohort's published version (``memberships.version = cohorts.version``);
rows of older versions and of candidate versions a crashed run left behind are dropped. Downgrade: the 0003 shape,
every row getting its cohort's ``cohorts.version`` (rows of a cohort without a published version cannot exist
under 0004 and would be dropped). Rows are copied in key order inside the migration's transaction, on both
backends. A frozen copy of the columns: it does not import ``cohort_pipeline.store.schema``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_PERSON_ID = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    _set_aside("memberships_0003")
    op.create_table(
        "memberships",
        sa.Column("cohort_id", _ID, nullable=False),
        sa.Column("person_id", _PERSON_ID, nullable=False),
        sa.PrimaryKeyConstraint("cohort_id", "person_id", name="pk_memberships"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO memberships (cohort_id, person_id) "
        "SELECT m.cohort_id, m.person_id FROM memberships_0003 AS m "
        "JOIN cohorts AS c ON c.id = m.cohort_id AND c.version = m.version "
        "ORDER BY m.cohort_id, m.person_id"
    )
    op.drop_table("memberships_0003")


def downgrade() -> None:
    _set_aside("memberships_0004")
    op.create_table(
        "memberships",
        sa.Column("cohort_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", _PERSON_ID, nullable=False),
        sa.PrimaryKeyConstraint("cohort_id", "version", "person_id", name="pk_memberships"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO memberships (cohort_id, version, person_id) "
        "SELECT m.cohort_id, c.version, m.person_id FROM memberships_0004 AS m "
        "JOIN cohorts AS c ON c.id = m.cohort_id "
        "WHERE c.version IS NOT NULL "
        "ORDER BY m.cohort_id, c.version, m.person_id"
    )
    op.drop_table("memberships_0004")


def _set_aside(name: str) -> None:
    """Rename the current table out of the way; on PostgreSQL also its primary key, whose name (and index name)
    the rebuilt table takes over."""
    op.rename_table("memberships", name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT pk_memberships TO pk_{name}")
