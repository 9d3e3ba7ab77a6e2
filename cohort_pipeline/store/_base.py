"""What every part of the store shares: the engine, the clock, transactions and the cohort row lock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Self

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, Row
from sqlalchemy.engine import URL

from cohort_pipeline.store.engine import create_store_engine, read_transaction, write_transaction
from cohort_pipeline.store.errors import NotFoundError
from cohort_pipeline.store.schema import cohorts

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime, name: str) -> datetime:
    """``value`` converted to UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


class StoreBase:
    """Engine, clock and transaction helpers shared by the store's mixins."""

    def __init__(self, url: str | URL, *, clock: Clock | None = None) -> None:
        self._engine: Engine = create_store_engine(url)
        self._clock: Clock = clock or utc_now

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations, diagnostics and tests; not for writing around the store)."""
        return self._engine

    @property
    def url(self) -> URL:
        """The database URL (password included: do not log it; use ``url.render_as_string()``)."""
        return self._engine.url

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Release pooled connections (a closed store can be used again; it reconnects lazily)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        return as_utc(self._clock(), "clock()")

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with read_transaction(self._engine) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with write_transaction(self._engine) as conn:
            yield conn


def lock_cohort(conn: Connection, cohort_id: int) -> Row[tuple[object, ...]]:
    """Read the cohort row and lock it until the transaction ends.

    Every state-machine write goes through this first, so decisions ("is this run newer than the published
    version?") and the update that acts on them see the same row. PostgreSQL: ``FOR UPDATE``. SQLite: the write
    transaction already holds the database write lock (``BEGIN IMMEDIATE``).
    """
    row = conn.execute(sa.select(cohorts).where(cohorts.c.id == cohort_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFoundError("cohort", cohort_id)
    return row
