"""Calculation history (PostHog ``CohortCalculationHistory``, spec 9.3): one row per finished or failed run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Row

from cohort_pipeline.store._base import StoreBase
from cohort_pipeline.store.records import CalculationRecord
from cohort_pipeline.store.schema import calculation_history

DEFAULT_HISTORY_LIMIT = 100
"""Spec 8.3: ``calculation_history`` default limit."""


def calculation_record(row: Row[Any]) -> CalculationRecord:
    """A ``CalculationRecord`` from a ``calculation_history`` row."""
    return CalculationRecord(
        id=row.id,
        cohort_id=row.cohort_id,
        project_id=row.project_id,
        version=row.version,
        filters=row.filters,
        started_at=row.started_at,
        finished_at=row.finished_at,
        count=row.count,
        entered=row.entered,
        exited=row.exited,
        error=row.error,
        error_code=row.error_code,
        duration_ms=row.duration_ms,
    )


def duration_ms(started_at: datetime, finished_at: datetime) -> int:
    """Whole milliseconds between two instants (0 if the clock went backwards)."""
    return max(0, int((finished_at - started_at).total_seconds() * 1000))


def insert_history(
    conn: Connection,
    *,
    cohort: Row[Any],
    version: int | None,
    filters: Any,
    started_at: datetime,
    finished_at: datetime,
    count: int | None = None,
    entered: int | None = None,
    exited: int | None = None,
    error: str | None = None,
    error_code: str | None = None,
) -> None:
    """Record one run, inside the caller's transaction (so it commits or rolls back with the state change)."""
    conn.execute(
        sa.insert(calculation_history).values(
            cohort_id=cohort.id,
            project_id=cohort.project_id,
            version=version,
            filters=filters,
            started_at=started_at,
            finished_at=finished_at,
            count=count,
            entered=entered,
            exited=exited,
            error=error,
            error_code=error_code,
            duration_ms=duration_ms(started_at, finished_at),
        )
    )


class HistoryMixin(StoreBase):
    """Reading the calculation history."""

    def calculation_history(self, cohort_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> list[CalculationRecord]:
        """The cohort's runs, newest first (by start time, then by insertion order)."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        statement = (
            sa.select(calculation_history)
            .where(calculation_history.c.cohort_id == cohort_id)
            .order_by(calculation_history.c.started_at.desc(), calculation_history.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(statement).all()
        return [calculation_record(row) for row in rows]
