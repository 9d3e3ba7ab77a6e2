"""Projects: the unit of isolation (PostHog's team / environment) and its timezone and test-account filters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store._base import StoreBase
from cohort_pipeline.store.errors import ConflictError, NotFoundError
from cohort_pipeline.store.records import ProjectRecord
from cohort_pipeline.store.schema import projects

NAME_MAX_LENGTH = 400


class ProjectUpdate(TypedDict, total=False):
    """Fields ``update_project`` may change."""

    name: str
    timezone: str
    test_account_filters: Iterable[Mapping[str, Any]]


def project_record(row: Row[Any]) -> ProjectRecord:
    """A ``ProjectRecord`` from a ``projects`` row."""
    return ProjectRecord(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        test_account_filters=list(row.test_account_filters or []),
        created_at=row.created_at,
    )


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise CohortValidationError("This field may not be blank.", attr="name")
    if len(name) > NAME_MAX_LENGTH:
        raise CohortValidationError(f"Ensure this field has no more than {NAME_MAX_LENGTH} characters.", attr="name")
    return name


def _checked_timezone(timezone: str) -> str:
    """The IANA name, verified now so a typo fails at save time rather than in every later calculation."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CohortValidationError(f"Unknown time zone {timezone!r}.", attr="timezone") from None
    return timezone


def _checked_filters(filters: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(filters, (str, bytes, Mapping)):
        raise CohortValidationError("Must be a list of property filters.", attr="test_account_filters")
    items = list(filters)
    if not all(isinstance(item, Mapping) for item in items):
        raise CohortValidationError("Every test account filter must be an object.", attr="test_account_filters")
    return [dict(item) for item in items]


def bump_id_sequence(conn: Connection, table: str) -> None:
    """After an explicit id on PostgreSQL, move the id sequence past it so later automatic ids do not clash."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )


class ProjectsMixin(StoreBase):
    """Create, read and update projects."""

    def create_project(
        self,
        name: str,
        timezone: str = "UTC",
        test_account_filters: Iterable[Mapping[str, Any]] = (),
        project_id: int | None = None,
    ) -> ProjectRecord:
        """Create a project; ``project_id`` pins the id (PostHog exports, fixtures), else one is assigned."""
        values: dict[str, Any] = {
            "name": _checked_name(name),
            "timezone": _checked_timezone(timezone),
            "test_account_filters": _checked_filters(test_account_filters),
            "created_at": self._now(),
        }
        if project_id is not None:
            values["id"] = int(project_id)
        try:
            with self._write() as conn:
                row = conn.execute(sa.insert(projects).values(**values).returning(*projects.c)).one()
                if project_id is not None:
                    bump_id_sequence(conn, "projects")
        except IntegrityError as exc:
            raise ConflictError(f"project {project_id} already exists") from exc
        return project_record(row)

    def get_project(self, project_id: int) -> ProjectRecord:
        """The project, or ``NotFoundError``."""
        with self._read() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).one_or_none()
        if row is None:
            raise NotFoundError("project", project_id)
        return project_record(row)

    def list_projects(self) -> list[ProjectRecord]:
        """Every project, by id."""
        with self._read() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.id)).all()
        return [project_record(row) for row in rows]

    def update_project(self, project_id: int, **fields: Unpack[ProjectUpdate]) -> ProjectRecord:
        """Change a project's name, timezone or test-account filters; unknown fields are a ``TypeError``."""
        values = _project_values(dict(fields))
        with self._write() as conn:
            statement = sa.update(projects).where(projects.c.id == project_id)
            if values:
                statement = statement.values(**values)
            else:  # nothing to change: still verify the project exists
                statement = statement.values(id=projects.c.id)
            row = conn.execute(statement.returning(*projects.c)).one_or_none()
        if row is None:
            raise NotFoundError("project", project_id)
        return project_record(row)


def _project_values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(ProjectUpdate.__annotations__)
    if unknown:
        raise TypeError(f"update_project() got unexpected field(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = _checked_name(fields["name"])
    if "timezone" in fields:
        values["timezone"] = _checked_timezone(fields["timezone"])
    if "test_account_filters" in fields:
        values["test_account_filters"] = _checked_filters(fields["test_account_filters"])
    return values
