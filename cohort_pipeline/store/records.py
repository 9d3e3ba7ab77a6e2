"""Plain, immutable values the store hands out.

Callers never get a live ORM object or a database row: a record is a snapshot taken inside the transaction that
read it, so it cannot lazily hit the database later or be mutated and flushed by accident. JSON fields are
fresh Python objects decoded for each call, so mutating one cannot leak into another caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """A project (PostHog: team/environment): the unit of isolation for cohorts, data and API keys."""

    id: int
    name: str
    timezone: str
    test_account_filters: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CohortRecord:
    """A cohort row (spec 1.1) including its calculation state (spec 1.3).

    ``calculation_requested_at`` is this project's addition: when the latest run was requested; stuck detection
    measures from it (see ``CohortStore.reset_stuck``).
    """

    id: int
    project_id: int
    name: str | None
    description: str
    filters: dict[str, Any] | None
    query: dict[str, Any] | None
    groups: list[Any]
    is_static: bool
    deleted: bool
    version: int | None
    pending_version: int | None
    count: int | None
    is_calculating: bool
    last_calculation: datetime | None
    errors_calculating: int
    last_error_at: datetime | None
    last_calculation_duration_ms: int | None
    calculation_requested_at: datetime | None
    cohort_type: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What ``CohortStore.publish`` did.

    ``published`` is false when the run was older than (or equal to) the published version; then readers saw no
    change, ``count`` is the size of the discarded candidate set and ``entered``/``exited`` are 0.
    ``previous_version`` is the version readers saw before this call.
    """

    published: bool
    version: int
    count: int
    entered: int
    exited: int
    previous_version: int | None


@dataclass(frozen=True, slots=True)
class CalculationRecord:
    """One calculation run (PostHog ``CohortCalculationHistory``): a success with counts, or a failure."""

    id: int
    cohort_id: int
    project_id: int
    version: int | None
    filters: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None
    count: int | None
    entered: int | None
    exited: int | None
    error: str | None
    error_code: str | None
    duration_ms: int | None

    @property
    def failed(self) -> bool:
        """True for a run that ended in an error."""
        return self.error is not None or self.error_code is not None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A personal API key without its secret (only the hash is stored; the secret is shown once)."""

    id: int
    project_id: int
    label: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def is_active(self) -> bool:
        """False once the key has been revoked."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class FeatureFlagRecord:
    """A feature flag of the minimal registry: its key, whether it is active, and PostHog's ``filters`` JSON
    (the cohorts it targets are the ``cohort`` properties of its condition groups)."""

    id: int
    project_id: int
    key: str
    name: str
    filters: dict[str, Any]
    active: bool
    deleted: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime
