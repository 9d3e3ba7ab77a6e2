"""Feature flags: a minimal registry (key, active state, PostHog's ``filters``) for the cohort rules of spec 8.2.

Only storage-level checks happen here (lengths, JSON shape, the key being unique among the project's non-deleted
flags); which cohorts a flag may target is the service layer's rule (``service/feature_flags.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy import Connection, Row

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store._base import StoreBase
from cohort_pipeline.store.errors import NotFoundError
from cohort_pipeline.store.records import FeatureFlagRecord
from cohort_pipeline.store.schema import feature_flags, projects

KEY_MAX_LENGTH = 400
NAME_MAX_LENGTH = 400
DUPLICATE_KEY_MESSAGE = "There is already a feature flag with this key."
"""PostHog's message when a key is taken by another non-deleted flag of the project."""


class FeatureFlagUpdate(TypedDict, total=False):
    """Fields ``update_feature_flag`` may change."""

    key: str
    name: str
    filters: Mapping[str, Any]
    active: bool
    deleted: bool


def feature_flag_record(row: Row[Any]) -> FeatureFlagRecord:
    """A ``FeatureFlagRecord`` from a ``feature_flags`` row."""
    return FeatureFlagRecord(
        id=row.id,
        project_id=row.project_id,
        key=row.key,
        name=row.name,
        filters=dict(row.filters or {}),
        active=bool(row.active),
        deleted=bool(row.deleted),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _text(value: Any, attr: str, limit: int) -> str:
    if not isinstance(value, str):
        raise CohortValidationError("Not a valid string.", attr=attr)
    if len(value) > limit:
        raise CohortValidationError(f"Ensure this field has no more than {limit} characters.", attr=attr)
    return value


def _checked(field: str, value: Any) -> Any:
    if field == "key":
        return _text(value, "key", KEY_MAX_LENGTH)
    if field == "name":
        return _text(value, "name", NAME_MAX_LENGTH)
    if field == "filters":
        if not isinstance(value, Mapping):
            raise CohortValidationError("Must be a JSON object.", attr="filters")
        try:
            return json.loads(json.dumps(dict(value), allow_nan=False))
        except (TypeError, ValueError):
            raise CohortValidationError("Value must be valid JSON.", attr="filters") from None
    if field in {"active", "deleted"}:
        if not isinstance(value, bool):
            raise CohortValidationError("Must be a valid boolean.", attr=field)
        return value
    raise TypeError(f"unexpected feature flag field {field!r}")


def _key_taken(conn: Connection, project_id: int, key: str, except_id: int | None) -> bool:
    statement = sa.select(feature_flags.c.id).where(
        feature_flags.c.project_id == project_id,
        feature_flags.c.key == key,
        feature_flags.c.deleted.is_(sa.false()),
    )
    if except_id is not None:
        statement = statement.where(feature_flags.c.id != except_id)
    return conn.execute(statement).first() is not None


class FeatureFlagsMixin(StoreBase):
    """Create, read, update and soft-delete feature flags, always within a project."""

    def create_feature_flag(
        self,
        project_id: int,
        *,
        key: str,
        name: str = "",
        filters: Mapping[str, Any] | None = None,
        active: bool = True,
        created_by: str | None = None,
    ) -> FeatureFlagRecord:
        """Insert a flag; a key already used by a non-deleted flag of the project is a validation error."""
        values = {
            "key": _checked("key", key),
            "name": _checked("name", name),
            "filters": _checked("filters", filters if filters is not None else {"groups": []}),
            "active": _checked("active", active),
        }
        if created_by is not None:
            values["created_by"] = _text(created_by, "created_by", 255)
        now = self._now()
        with self._write() as conn:
            if conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)).first() is None:
                raise NotFoundError("project", project_id)
            if _key_taken(conn, project_id, values["key"], None):
                raise CohortValidationError(DUPLICATE_KEY_MESSAGE, attr="key", code="unique")
            row = conn.execute(
                sa.insert(feature_flags)
                .values(project_id=project_id, created_at=now, updated_at=now, **values)
                .returning(*feature_flags.c)
            ).one()
        return feature_flag_record(row)

    def update_feature_flag(
        self, project_id: int, flag_id: int, **fields: Unpack[FeatureFlagUpdate]
    ) -> FeatureFlagRecord:
        """Change a flag of ``project_id`` (deleted flags included, so they can be restored)."""
        unknown = set(fields) - set(FeatureFlagUpdate.__annotations__)
        if unknown:
            raise TypeError(f"update_feature_flag() got unexpected field(s): {', '.join(sorted(unknown))}")
        values = {field: _checked(field, value) for field, value in fields.items()}
        with self._write() as conn:
            row = conn.execute(
                sa.select(feature_flags).where(feature_flags.c.id == flag_id, feature_flags.c.project_id == project_id)
            ).one_or_none()
            if row is None:
                raise NotFoundError("feature flag", flag_id)
            key = values.get("key", row.key)
            deleted = values.get("deleted", row.deleted)
            if not deleted and _key_taken(conn, project_id, key, flag_id):
                raise CohortValidationError(DUPLICATE_KEY_MESSAGE, attr="key", code="unique")
            row = conn.execute(
                sa.update(feature_flags)
                .where(feature_flags.c.id == flag_id)
                .values(updated_at=self._now(), **values)
                .returning(*feature_flags.c)
            ).one()
        return feature_flag_record(row)

    def get_feature_flag(self, project_id: int, flag_id: int) -> FeatureFlagRecord:
        """The flag if it belongs to ``project_id`` (deleted ones included); else ``NotFoundError``."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(feature_flags).where(feature_flags.c.id == flag_id, feature_flags.c.project_id == project_id)
            ).one_or_none()
        if row is None:
            raise NotFoundError("feature flag", flag_id)
        return feature_flag_record(row)

    def list_feature_flags(
        self, project_id: int, *, include_deleted: bool = False, active_only: bool = False
    ) -> list[FeatureFlagRecord]:
        """The project's flags by id."""
        statement = sa.select(feature_flags).where(feature_flags.c.project_id == project_id)
        if not include_deleted:
            statement = statement.where(feature_flags.c.deleted.is_(sa.false()))
        if active_only:
            statement = statement.where(feature_flags.c.active.is_(sa.true()))
        with self._read() as conn:
            rows = conn.execute(statement.order_by(feature_flags.c.id)).all()
        return [feature_flag_record(row) for row in rows]
