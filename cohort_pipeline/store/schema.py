"""Table definitions of the store (SQLAlchemy Core).

This metadata is the runtime description of the schema; the schema itself is created and changed only by the
Alembic migrations in ``migrations/versions`` (which are frozen copies and must not import this module). A test
compares the two, so a column added here without a migration fails the suite.

Types are chosen to behave the same on SQLite and PostgreSQL:

* ``UTCDateTime`` stores instants; it refuses naive datetimes and always returns timezone-aware UTC, because
  SQLite has no timezone-aware type and silently dropping an offset is the classic source of off-by-hours bugs.
* ``JSONDocument`` is ``JSON`` on SQLite and ``JSONB`` on PostgreSQL; Python ``None`` is SQL ``NULL`` (not the
  JSON literal ``null``), so "no filters" is queryable with ``IS NULL`` on both.
* ids are ``BIGINT`` on PostgreSQL and ``INTEGER`` on SQLite (where only ``INTEGER PRIMARY KEY`` autoincrements).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Primary/foreign key type: 64-bit on PostgreSQL, SQLite's rowid alias on SQLite."""


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware instant, normalised to UTC on the way in and on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts timezone-aware instants")
        value = value.astimezone(UTC)
        # SQLite stores text; keep one fixed format (naive UTC) so comparisons in SQL order correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


PersonId = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
"""Person ids: any string. Byte-order collation on PostgreSQL, as SQLite's BINARY: the same sort order on both
backends and in Polars, and much cheaper index maintenance than a linguistic collation."""

JSONDocument = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _json_list_default() -> Any:
    return sa.text("'[]'")


projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(400), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("test_account_filters", JSONDocument, nullable=False, server_default=_json_list_default()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

cohorts = sa.Table(
    "cohorts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(400), nullable=True),
    sa.Column("description", sa.String(1000), nullable=False, server_default=""),
    sa.Column("filters", JSONDocument, nullable=True),
    sa.Column("query", JSONDocument, nullable=True),
    sa.Column("groups", JSONDocument, nullable=False, server_default=_json_list_default()),
    sa.Column("is_static", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("version", sa.Integer(), nullable=True),
    sa.Column("pending_version", sa.Integer(), nullable=True),
    sa.Column("count", sa.Integer(), nullable=True),
    # SHA-256 (hex) of the published members of a dynamic cohort, the sorted distinct ids each followed by NUL
    # (``members.members_digest``), written by the publish that writes the rows; NULL when not known (never
    # published, static, or published before migration 0005). A migration that rewrites ``memberships`` rows must
    # set it to NULL. Equal digests let a publish skip reading and diffing unchanged members.
    sa.Column("members_digest", sa.String(64), nullable=True),
    sa.Column("is_calculating", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("last_calculation", UTCDateTime(), nullable=True),
    sa.Column("errors_calculating", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error_at", UTCDateTime(), nullable=True),
    sa.Column("last_calculation_duration_ms", sa.BigInteger(), nullable=True),
    sa.Column("calculation_requested_at", UTCDateTime(), nullable=True),
    sa.Column("cohort_type", sa.String(32), nullable=True),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

static_members = sa.Table(
    "static_members",
    metadata,
    sa.Column("cohort_id", Id, sa.ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("person_id", PersonId, primary_key=True),
    sa.Column("added_at", UTCDateTime(), nullable=False),
)

# The published members of dynamic cohorts: one row per (cohort, person) of the cohort's published
# ``cohorts.version`` (migration 0004; a publish applies the difference in the transaction that flips the
# version). No foreign key: it is the hot table, rows are written only by ``publish`` after it has locked the
# cohort, and cohorts are never hard-deleted (the check cost ~2.5 s per million rows on PostgreSQL). On SQLite it
# is a WITHOUT ROWID table (migration 0003): the primary key is the table, so each row is stored and maintained
# once instead of in a table plus its primary-key index.
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("cohort_id", Id, primary_key=True),
    sa.Column("person_id", PersonId, primary_key=True),
    sqlite_with_rowid=False,
)

calculation_history = sa.Table(
    "calculation_history",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("cohort_id", Id, sa.ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=True),
    sa.Column("filters", JSONDocument, nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("count", sa.Integer(), nullable=True),
    sa.Column("entered", sa.Integer(), nullable=True),
    sa.Column("exited", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("duration_ms", sa.BigInteger(), nullable=True),
    sa.Index(None, "cohort_id", "started_at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("label", sa.String(400), nullable=False, server_default=""),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", JSONDocument, nullable=False, server_default=_json_list_default()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

# A minimal feature-flag registry (spec 8.2): only what the cohort rules need. ``filters`` keeps PostHog's flag
# filter JSON (``{"groups": [{"properties": [...], "rollout_percentage": ...}]}``); the cohorts a flag targets are
# read from its ``cohort`` properties. Keys are unique among a project's non-deleted flags (checked by the store
# inside the write transaction, as a partial unique index would not read the same on both backends).
feature_flags = sa.Table(
    "feature_flags",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("project_id", Id, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("name", sa.String(400), nullable=False, server_default=""),
    sa.Column("filters", JSONDocument, nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
