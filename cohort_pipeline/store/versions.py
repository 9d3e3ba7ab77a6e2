"""The calculation state machine of spec 1.3, plus the scheduling queries of spec 9.2 and 9.4.

    request_calculation   pending_version := coalesce(pending_version, 0) + 1 (one SQL statement);
                          dynamic cohorts: is_calculating := true
    is_obsolete           pending_version > version: a newer run was requested, this one may stop
    publish               one transaction that, only if `version` is newer than the published one (a slow old
                          run never overwrites a newer result), applies the difference to the stored members
                          (insert who entered, delete who left) and flips `version`
    record_failure        errors_calculating += 1, last_error_at := now; version untouched, readers unaffected
    (both finish with)    is_calculating := false only if no newer run is pending

A failed or superseded run never changes what readers see: the stored members of a dynamic cohort are always
those of ``cohorts.version``, and they change only in the transaction that changes ``cohorts.version``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import Connection, Row

from cohort_pipeline.store._base import StoreBase, as_utc, lock_cohort
from cohort_pipeline.store.cohorts import cohort_record
from cohort_pipeline.store.errors import NotFoundError, VersionError
from cohort_pipeline.store.history import duration_ms, insert_history
from cohort_pipeline.store.members import (
    count_static,
    delete_members,
    insert_members,
    insert_static_rows,
    members_difference,
    members_digest,
    still_calculating,
    stored_members,
)
from cohort_pipeline.store.person_ids import PersonIds, person_id_series
from cohort_pipeline.store.records import CohortRecord, PublishResult
from cohort_pipeline.store.schema import UTCDateTime, calculation_history, cohorts

logger = logging.getLogger(__name__)

ERROR_CODES = frozenset(
    {
        "capacity",
        "interrupted",
        "timeout",
        "memory_limit",
        "query_size",
        "validation_error",
        "invalid_regex",
        "incompatible_types",
        "no_properties",
        "flag_changed",
        "unknown",
    }
)
"""Spec 9.5: PostHog's friendly error codes; anything else is stored as ``unknown``."""

MAX_AGE = timedelta(minutes=15)
"""Spec 8.3 ``MAX_AGE_MINUTES``: minimum gap between periodic recalculations of one cohort."""
MAX_ERRORS_CALCULATING = 20
"""Spec 8.3: cohorts with more consecutive errors are no longer recalculated periodically (20 still are)."""
BACKOFF_BASE = timedelta(minutes=30)
"""Spec 8.3: after n errors a cohort waits ``30 min * 2**n`` since its last error."""
STUCK_AFTER = timedelta(hours=1)
"""Spec 9.4: a calculation flagged for longer than this is considered stuck."""

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_MAX_BACKOFF_EXPONENT = 40  # 30 min * 2**40 is ~60 million years: every larger exponent means "never"


def _backoff_start(now: datetime, errors: int) -> datetime:
    """``now - 30 min * 2**errors``, clamped to the earliest instant when the back-off outgrows the calendar."""
    try:
        return now - BACKOFF_BASE * 2**errors
    except OverflowError:
        return _EARLIEST


def _backoff_cutoff(now: datetime, max_errors: int) -> sa.ColumnElement[Any]:
    """Per row, the latest ``last_error_at`` that has served its back-off (a CASE over the error count).

    Spelled as a CASE of precomputed instants rather than date arithmetic in SQL, which SQLite and PostgreSQL
    write differently.
    """
    whens = [
        (cohorts.c.errors_calculating == n, sa.literal(_backoff_start(now, n), UTCDateTime()))
        for n in range(min(max_errors, _MAX_BACKOFF_EXPONENT) + 1)
    ]
    return sa.case(*whens, else_=sa.literal(_EARLIEST, UTCDateTime()))


def _is_newer(version: int, published: int | None) -> bool:
    """Spec 1.3 step 4: only ``version < new OR version IS NULL`` may flip."""
    return published is None or version > published


def _not_published(version: int, count: int, previous: int | None) -> PublishResult:
    return PublishResult(published=False, version=version, count=count, entered=0, exited=0, previous_version=previous)


class VersioningMixin(StoreBase):
    """Requesting, publishing and failing calculations; stuck and stale cohorts."""

    # --- spec 1.3 -----------------------------------------------------------------------------------------

    def request_calculation(self, cohort_id: int) -> int:
        """Step 1: bump ``pending_version`` atomically and return it; dynamic cohorts become ``is_calculating``.

        One ``UPDATE ... RETURNING``, so concurrent requests always get distinct, increasing numbers.
        Deleted cohorts are not calculated (``NotFoundError``).
        """
        statement = (
            sa.update(cohorts)
            .where(cohorts.c.id == cohort_id, cohorts.c.deleted.is_(sa.false()))
            .values(
                pending_version=sa.func.coalesce(cohorts.c.pending_version, 0) + 1,
                is_calculating=sa.case(
                    (cohorts.c.is_static.is_(sa.true()), cohorts.c.is_calculating), else_=sa.true()
                ),
                calculation_requested_at=self._now(),
            )
            .returning(cohorts.c.pending_version)
        )
        with self._write() as conn:
            pending = conn.execute(statement).scalar_one_or_none()
        if pending is None:
            raise NotFoundError("cohort", cohort_id)
        return int(pending)

    def is_obsolete(self, cohort_id: int, version: int) -> bool:
        """Step 2: true when a newer run has been requested, so the run for ``version`` may exit untouched."""
        with self._read() as conn:
            row = conn.execute(sa.select(cohorts.c.pending_version).where(cohorts.c.id == cohort_id)).one_or_none()
        if row is None:
            raise NotFoundError("cohort", cohort_id)
        return (row.pending_version or 0) > version

    def publish(
        self,
        cohort_id: int,
        version: int,
        person_ids: PersonIds,
        *,
        started_at: datetime,
        finished_at: datetime | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> PublishResult:
        """Steps 3, 4, 6, 8: make the run's members the published ones if ``version`` is the newest.

        Dynamic cohorts: the ids are validated before anything is written; then one write transaction locks the
        cohort and, if ``version`` is newer than the published version, reads the stored (published) members,
        inserts the persons who entered and deletes those who exited, flips ``version``, sets ``count``
        (distinct persons), ``last_calculation := finished_at``, clears ``errors_calculating``/``last_error_at``,
        clears ``is_calculating`` unless a newer run is pending, and records history with entered/exited
        against the previous version. Readers see the old members or the new ones, never a mix; a failure
        anywhere rolls all of it back. A run that is not newer changes nothing. A run newer than the published
        version is published even if a still newer one is pending (PostHog: fresher data now, and the newer run
        flips again when it lands); callers that want to skip superseded work check ``is_obsolete`` first.

        Static cohorts (a from-criteria snapshot, spec 7.1): the ids are added to the static members in the same
        single transaction, ``count`` becomes the static member count and ``exited`` is 0.

        ``filters`` is the definition the run computed (history snapshot); default: the cohort's current one.
        Raises ``VersionError`` for a version never requested, ``InvalidMembershipError`` for bad ids; in both
        cases, and on any failure, the published state is unchanged.
        """
        ids = person_id_series(person_ids)
        started_at = as_utc(started_at, "started_at")
        finished_at = as_utc(finished_at, "finished_at") if finished_at is not None else self._now()
        state = self._calculation_state(cohort_id)
        if version > (state.pending_version or 0):
            raise VersionError(
                f"cohort {cohort_id}: version {version} was never requested (pending_version is "
                f"{state.pending_version}); call request_calculation first"
            )
        if not _is_newer(version, state.version):
            return _not_published(version, len(ids), state.version)
        run = _Run(version=version, started_at=started_at, finished_at=finished_at, filters=filters)
        if state.is_static:
            return self._publish_static(cohort_id, run, ids)
        return self._publish_dynamic(cohort_id, run, ids)

    def record_failure(
        self,
        cohort_id: int,
        version: int,
        message: str,
        error_code: str = "unknown",
        *,
        started_at: datetime | None = None,
    ) -> CohortRecord:
        """Step 5: charge an error and log it; ``version`` and the published members stay as they were.

        ``errors_calculating`` counts consecutive failed *runs*: a second failure reported for the same version
        (a retry) is logged but not charged again, and a failure of a run older than the published version
        (a newer run already succeeded) is logged but does not break the streak of successes. ``is_calculating``
        is cleared unless a newer run is pending. Unknown error codes are stored as ``unknown``.
        """
        code = error_code if error_code in ERROR_CODES else "unknown"
        if code != error_code:
            logger.warning("cohort %s: unknown error code %r stored as 'unknown'", cohort_id, error_code)
        now = self._now()
        started = as_utc(started_at, "started_at") if started_at is not None else now
        with self._write() as conn:
            row = lock_cohort(conn, cohort_id)
            values: dict[str, Any] = {"is_calculating": still_calculating(row, version)}
            if _is_newer(version, row.version) and not _failure_recorded(conn, cohort_id, version):
                values.update(errors_calculating=row.errors_calculating + 1, last_error_at=now)
            conn.execute(sa.update(cohorts).where(cohorts.c.id == cohort_id).values(**values))
            insert_history(
                conn,
                cohort=row,
                version=version,
                filters=row.filters,
                started_at=started,
                finished_at=now,
                error=message,
                error_code=code,
            )
            updated = conn.execute(sa.select(cohorts).where(cohorts.c.id == cohort_id)).one()
        return cohort_record(updated)

    # --- spec 9.4 / 9.2 -----------------------------------------------------------------------------------

    def reset_stuck(
        self, older_than: timedelta = STUCK_AFTER, now: datetime | None = None, limit: int | None = None
    ) -> list[int]:
        """Clear ``is_calculating`` on cohorts flagged for longer than ``older_than``, charging each an error.

        "Flagged since" is ``calculation_requested_at`` (set by ``request_calculation``), falling back to
        ``last_calculation`` and then ``created_at``. PostHog measures from ``last_calculation`` alone, which
        also resets healthy runs of cohorts last calculated long ago and never resets a never-calculated one.
        Oldest first; ``limit`` caps the resets per call (PostHog: 3 per tick). Returns the reset ids.
        """
        now = as_utc(now, "now") if now is not None else self._now()
        flagged_since = sa.func.coalesce(
            cohorts.c.calculation_requested_at, cohorts.c.last_calculation, cohorts.c.created_at
        )
        candidates = (
            sa.select(cohorts.c.id)
            .where(
                cohorts.c.is_calculating.is_(sa.true()),
                cohorts.c.deleted.is_(sa.false()),
                flagged_since <= sa.literal(now - older_than, UTCDateTime()),
            )
            .order_by(flagged_since, cohorts.c.id)
            .limit(limit)
        )
        with self._write() as conn:
            ids = list(conn.execute(candidates.with_for_update()).scalars())
            if ids:
                conn.execute(
                    sa.update(cohorts)
                    .where(cohorts.c.id.in_(ids))
                    .values(
                        is_calculating=False,
                        errors_calculating=cohorts.c.errors_calculating + 1,
                        last_error_at=now,
                    )
                )
        return ids

    def stale_dynamic_cohorts(
        self,
        now: datetime | None = None,
        max_age: timedelta = MAX_AGE,
        max_errors: int = MAX_ERRORS_CALCULATING,
        limit: int | None = None,
        *,
        project_id: int | None = None,
    ) -> list[CohortRecord]:
        """Spec 9.2 step 1: dynamic cohorts due for a periodic recalculation, oldest first (never calculated first).

        Eligible: not static, not deleted, not calculating, ``errors_calculating <= max_errors``,
        ``last_calculation`` null or at least ``max_age`` old, and past the back-off
        ``last_error_at <= now - 30 min * 2**errors_calculating`` (or no error time).
        """
        now = as_utc(now, "now") if now is not None else self._now()
        if max_errors < 0:
            return []
        statement = (
            sa.select(cohorts)
            .where(
                cohorts.c.is_static.is_(sa.false()),
                cohorts.c.deleted.is_(sa.false()),
                cohorts.c.is_calculating.is_(sa.false()),
                cohorts.c.errors_calculating <= max_errors,
                sa.or_(
                    cohorts.c.last_calculation.is_(None),
                    cohorts.c.last_calculation <= sa.literal(now - max_age, UTCDateTime()),
                ),
                sa.or_(cohorts.c.last_error_at.is_(None), cohorts.c.last_error_at <= _backoff_cutoff(now, max_errors)),
            )
            .order_by(cohorts.c.last_calculation.asc().nulls_first(), cohorts.c.id)
            .limit(limit)
        )
        if project_id is not None:
            statement = statement.where(cohorts.c.project_id == project_id)
        with self._read() as conn:
            rows = conn.execute(statement).all()
        return [cohort_record(row) for row in rows]

    # --- publish internals --------------------------------------------------------------------------------

    def _calculation_state(self, cohort_id: int) -> Row[Any]:
        with self._read() as conn:
            row = conn.execute(
                sa.select(cohorts.c.version, cohorts.c.pending_version, cohorts.c.is_static).where(
                    cohorts.c.id == cohort_id
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError("cohort", cohort_id)
        return row

    def _publish_dynamic(self, cohort_id: int, run: _Run, ids: pl.Series) -> PublishResult:
        """Apply the difference to the stored members and flip the version, in one transaction (all or nothing).

        The stored members are read inside the transaction, after the cohort is locked: no other publish of this
        cohort can change them before the transaction ends (SQLite: the database write lock; PostgreSQL: the
        cohort row lock, which every publish takes first). When the digest of ``ids`` equals the stored one
        (``cohorts.members_digest``, written with the rows by the publish before), nobody entered or left: the rows
        are neither read nor written.
        """
        digest = members_digest(ids)  # before the transaction: the lock is held for the database work only
        with self._write() as conn:
            row = lock_cohort(conn, cohort_id)
            previous = row.version
            if not _is_newer(run.version, previous):
                return _not_published(run.version, len(ids), previous)
            entered = exited = 0
            if row.members_digest != digest:
                entered_ids, exited_ids = members_difference(stored_members(conn, cohort_id), ids)
                insert_members(conn, cohort_id, entered_ids)
                delete_members(conn, cohort_id, exited_ids)
                entered, exited = len(entered_ids), len(exited_ids)
            _finish_success(conn, row, run, count=len(ids), entered=entered, exited=exited, members_digest=digest)
        return PublishResult(True, run.version, len(ids), entered, exited, previous)

    def _publish_static(self, cohort_id: int, run: _Run, ids: pl.Series) -> PublishResult:
        with self._write() as conn:
            row = lock_cohort(conn, cohort_id)
            previous = row.version
            if not _is_newer(run.version, previous):
                return _not_published(run.version, len(ids), previous)
            before = count_static(conn, cohort_id)
            insert_static_rows(conn, cohort_id, ids, run.finished_at)
            count = count_static(conn, cohort_id)
            _finish_success(conn, row, run, count=count, entered=count - before, exited=0)
        return PublishResult(True, run.version, count, count - before, 0, previous)


@dataclass(frozen=True, slots=True)
class _Run:
    """The facts of one calculation run that the success path records."""

    version: int
    started_at: datetime
    finished_at: datetime
    filters: Mapping[str, Any] | None


def _finish_success(conn: Connection, row: Row[Any], run: _Run, *, count: int, entered: int, exited: int,
                    members_digest: str | None = None) -> None:
    """Spec 1.3 steps 4 and 6 plus the history row, inside the caller's (locked) transaction. ``members_digest``:
    the digest of the rows a dynamic publish left (static cohorts keep NULL)."""
    conn.execute(
        sa.update(cohorts)
        .where(cohorts.c.id == row.id)
        .values(
            version=run.version,
            count=count,
            last_calculation=run.finished_at,
            last_calculation_duration_ms=duration_ms(run.started_at, run.finished_at),
            errors_calculating=0,
            last_error_at=None,
            is_calculating=still_calculating(row, run.version),
            members_digest=members_digest,
        )
    )
    insert_history(
        conn,
        cohort=row,
        version=run.version,
        filters=dict(run.filters) if run.filters is not None else row.filters,
        started_at=run.started_at,
        finished_at=run.finished_at,
        count=count,
        entered=entered,
        exited=exited,
    )


def _failure_recorded(conn: Connection, cohort_id: int, version: int) -> bool:
    """Whether a failure of this run (version) was already charged (retries count once, spec 9.4)."""
    statement = sa.select(calculation_history.c.id).where(
        calculation_history.c.cohort_id == cohort_id,
        calculation_history.c.version == version,
        calculation_history.c.error_code.is_not(None),
    )
    return conn.execute(statement.limit(1)).first() is not None
