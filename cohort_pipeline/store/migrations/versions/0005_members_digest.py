"""``cohorts.members_digest``: the SHA-256 of a dynamic cohort's published members.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

A publish compares the digest of its members with the stored one and, when they are equal, skips reading the stored
rows and computing their difference (nobody entered or left). Existing cohorts get NULL ("not known"): their next
publish reads and diffs the rows as before and records the digest. The downgrade drops the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cohorts", sa.Column("members_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cohorts") as batch:  # SQLite before 3.35 cannot drop a column in place
        batch.drop_column("members_digest")
