"""Cohort definitions: create, read, update, soft delete.

Only the user-editable fields (spec 1.1 "rw") are written here. The calculation state (``version``,
``pending_version``, ``count``, ``is_calculating``, ...) changes only through the state machine in
``versions.py``, so no caller can bypass its rules with an ordinary update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, Unpack, cast

import sqlalchemy as sa
from sqlalchemy import Row

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store._base import StoreBase
from cohort_pipeline.store.errors import ConflictError, NotFoundError
from cohort_pipeline.store.projects import bump_id_sequence
from cohort_pipeline.store.records import CohortRecord
from cohort_pipeline.store.schema import cohorts, projects

NAME_MAX_LENGTH = 400
DESCRIPTION_MAX_LENGTH = 1000
CREATED_BY_MAX_LENGTH = 255
COHORT_TYPES = frozenset({"static", "person_property", "behavioral", "realtime", "analytical"})
"""Spec 1.2: the values ``cohort_type`` may hold."""

MANAGED_FIELDS = frozenset(
    {
        "id",
        "project_id",
        "version",
        "pending_version",
        "count",
        "is_calculating",
        "last_calculation",
        "errors_calculating",
        "last_error_at",
        "last_calculation_duration_ms",
        "calculation_requested_at",
        "created_by",
        "created_at",
        "updated_at",
    }
)
"""Fields no caller sets directly: the store maintains them."""


class CohortUpdate(TypedDict, total=False):
    """Fields ``update_cohort`` may change (spec 1.1, read-write)."""

    name: str | None
    description: str
    filters: Mapping[str, Any] | None
    query: Mapping[str, Any] | None
    groups: Sequence[Any]
    is_static: bool
    cohort_type: str | None
    deleted: bool


def cohort_record(row: Row[Any]) -> CohortRecord:
    """A ``CohortRecord`` from a ``cohorts`` row."""
    return CohortRecord(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        description=row.description,
        filters=row.filters,
        query=row.query,
        groups=list(row.groups or []),
        is_static=bool(row.is_static),
        deleted=bool(row.deleted),
        version=row.version,
        pending_version=row.pending_version,
        count=row.count,
        is_calculating=bool(row.is_calculating),
        last_calculation=row.last_calculation,
        errors_calculating=row.errors_calculating,
        last_error_at=row.last_error_at,
        last_calculation_duration_ms=row.last_calculation_duration_ms,
        calculation_requested_at=row.calculation_requested_at,
        cohort_type=row.cohort_type,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _max_length(value: str, limit: int, attr: str) -> str:
    if len(value) > limit:
        raise CohortValidationError(f"Ensure this field has no more than {limit} characters.", attr=attr)
    return value


def _json_value(value: Any, attr: str) -> Any:
    """A deep, JSON-clean copy of ``value`` (a non-JSON value is a validation error, not a database error)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise CohortValidationError("Value must be valid JSON.", attr=attr) from None


def _checked_object(value: Mapping[str, Any] | None, attr: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise CohortValidationError("Must be a JSON object.", attr=attr)
    return cast(dict[str, Any], _json_value(dict(value), attr))


def _check_field(field: str, value: Any) -> Any:
    """Validate one writable field and return the value to store."""
    if field == "name":
        if value is None:
            return None
        if not isinstance(value, str):
            raise CohortValidationError("Not a valid string.", attr="name")
        return _max_length(value, NAME_MAX_LENGTH, "name")
    if field == "description":
        if not isinstance(value, str):
            raise CohortValidationError("Not a valid string.", attr="description")
        return _max_length(value, DESCRIPTION_MAX_LENGTH, "description")
    if field in {"filters", "query"}:
        return _checked_object(value, field)
    if field == "groups":
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise CohortValidationError("Must be a list.", attr="groups")
        return _json_value(list(value), "groups")
    if field in {"is_static", "deleted"}:
        if not isinstance(value, bool):
            raise CohortValidationError("Must be a valid boolean.", attr=field)
        return value
    if field == "cohort_type":
        if value is not None and value not in COHORT_TYPES:
            raise CohortValidationError(f'"{value}" is not a valid choice.', attr="cohort_type")
        return value
    if field == "created_by":
        if value is None:
            return None
        if not isinstance(value, str):
            raise CohortValidationError("Not a valid string.", attr="created_by")
        return _max_length(value, CREATED_BY_MAX_LENGTH, "created_by")
    raise AssertionError(f"unhandled cohort field {field}")


def _update_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    managed = set(fields) & MANAGED_FIELDS
    if managed:
        raise TypeError(
            f"update_cohort() cannot set {', '.join(sorted(managed))}: maintained by the store "
            "(use request_calculation / publish / record_failure)"
        )
    unknown = set(fields) - set(CohortUpdate.__annotations__)
    if unknown:
        raise TypeError(f"update_cohort() got unexpected field(s): {', '.join(sorted(unknown))}")
    return {field: _check_field(field, value) for field, value in fields.items()}


def _visible(project_id: int, cohort_id: int, include_deleted: bool) -> sa.ColumnElement[bool]:
    condition = sa.and_(cohorts.c.id == cohort_id, cohorts.c.project_id == project_id)
    return condition if include_deleted else sa.and_(condition, cohorts.c.deleted.is_(sa.false()))


class CohortsMixin(StoreBase):
    """Cohort definitions, always addressed within a project."""

    def create_cohort(
        self,
        project_id: int,
        *,
        name: str | None = None,
        description: str = "",
        filters: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        groups: Sequence[Any] = (),
        is_static: bool = False,
        cohort_type: str | None = None,
        created_by: str | None = None,
        cohort_id: int | None = None,
    ) -> CohortRecord:
        """Insert a cohort (never calculated: ``version``/``pending_version`` null, no members).

        ``cohort_id`` pins the id (cohorts declared in a definitions file keep their ids); a taken id is a
        ``ConflictError``.

        Only storage-level checks happen here (lengths, JSON shapes, enum values); the filter grammar and the
        create rules of spec 2 belong to ``model/`` and the service layer.
        """
        given = {
            "name": name,
            "description": description,
            "filters": filters,
            "query": query,
            "groups": groups,
            "is_static": is_static,
            "cohort_type": cohort_type,
            "created_by": created_by,
        }
        values = {field: _check_field(field, value) for field, value in given.items()}
        now = self._now()
        with self._write() as conn:
            exists = conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)).first()
            if exists is None:
                raise NotFoundError("project", project_id)
            if cohort_id is not None:
                values["id"] = int(cohort_id)
                if conn.execute(sa.select(cohorts.c.id).where(cohorts.c.id == cohort_id)).first() is not None:
                    raise ConflictError(f"cohort {cohort_id} already exists")
            row = conn.execute(
                sa.insert(cohorts)
                .values(project_id=project_id, created_at=now, updated_at=now, **values)
                .returning(*cohorts.c)
            ).one()
            if cohort_id is not None:
                bump_id_sequence(conn, "cohorts")
        return cohort_record(row)

    def update_cohort(self, project_id: int, cohort_id: int, **fields: Unpack[CohortUpdate]) -> CohortRecord:
        """Change writable fields of a cohort of ``project_id`` (deleted cohorts included, so they can be restored).

        Does not request a recalculation: the caller decides (spec 2.3: edits of dynamic cohorts do).
        """
        values = _update_values(fields)
        with self._write() as conn:
            row = conn.execute(
                sa.update(cohorts)
                .where(_visible(project_id, cohort_id, include_deleted=True))
                .values(updated_at=self._now(), **values)
                .returning(*cohorts.c)
            ).one_or_none()
        if row is None:
            raise NotFoundError("cohort", cohort_id)
        return cohort_record(row)

    def get_cohort(self, project_id: int, cohort_id: int, include_deleted: bool = False) -> CohortRecord:
        """The cohort if it belongs to ``project_id`` (and is not deleted, unless asked); else ``NotFoundError``."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(cohorts).where(_visible(project_id, cohort_id, include_deleted))
            ).one_or_none()
        if row is None:
            raise NotFoundError("cohort", cohort_id)
        return cohort_record(row)

    def list_cohorts(self, project_id: int, include_deleted: bool = False) -> list[CohortRecord]:
        """The project's cohorts by id; soft-deleted ones only when asked (PostHog's list hides them)."""
        statement = sa.select(cohorts).where(cohorts.c.project_id == project_id).order_by(cohorts.c.id)
        if not include_deleted:
            statement = statement.where(cohorts.c.deleted.is_(sa.false()))
        with self._read() as conn:
            rows = conn.execute(statement).all()
        return [cohort_record(row) for row in rows]

    def soft_delete(self, project_id: int, cohort_id: int) -> CohortRecord:
        """Mark the cohort deleted (spec 1.1: cohorts are never hard-deleted); memberships stay for a restore."""
        return self.update_cohort(project_id, cohort_id, deleted=True)
