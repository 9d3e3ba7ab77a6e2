"""Where the store lives and how it talks to it: URL resolution, engine set-up and transactions.

SQLite (the default) and PostgreSQL are supported. SQLite needs some care to behave like a real transactional
database under several processes (Dagster daemon, run workers, the API):

* pysqlite's own transaction handling is switched off and every transaction starts with an explicit ``BEGIN``,
  so reads see one snapshot and DDL is transactional;
* write transactions start with ``BEGIN IMMEDIATE``: they take the write lock up front, so a read-then-write
  transaction cannot fail half-way with "database is locked" when another writer got in first;
* WAL journal (readers never block the writer), foreign keys on, a 30 s busy timeout.

On PostgreSQL the same effect comes from ``SELECT ... FOR UPDATE`` on the cohort row (see ``lock_cohort``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from cohort_pipeline.store.errors import StoreError

STORE_URL_ENV = "COHORT_PIPELINE_STORE_URL"
"""Environment variable that overrides the default store location."""

SUPPORTED_BACKENDS = frozenset({"sqlite", "postgresql"})
_WRITE_OPTION = "cohort_store_write"
_SQLITE_BUSY_TIMEOUT_S = 30


def default_store_url() -> str:
    """``$COHORT_PIPELINE_STORE_URL`` if set, else a SQLite file ``./.cohort_pipeline/store.db``."""
    configured = os.environ.get(STORE_URL_ENV, "").strip()
    if configured:
        return configured
    return f"sqlite:///{Path.cwd() / '.cohort_pipeline' / 'store.db'}"


def normalise_url(url: str | URL) -> URL:
    """Parse ``url`` and pick the installed PostgreSQL driver (psycopg 3) for bare ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(f"unsupported store backend {backend!r}; use sqlite or postgresql")
    return parsed


def create_store_engine(url: str | URL) -> Engine:
    """An engine configured for the store's transaction discipline (see the module docstring)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True)


def _is_memory_database(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL) -> Engine:
    in_memory = _is_memory_database(url)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_S}}
    if in_memory:
        # every connection to ":memory:" is a new, empty database: share one connection instead
        kwargs["poolclass"] = StaticPool
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_S * 1000}")
            if not in_memory:
                _ensure_wal(cursor)
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_sqlite(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _ensure_wal(cursor: Any) -> None:
    """Put the database file in WAL mode (a property of the file, kept once set).

    Switching needs a moment when no other connection uses the file, and SQLite fails the switch at once rather
    than waiting for it (the busy handler is not consulted): several processes opening a new store together would
    otherwise fail with "database is locked". So the switch is retried until the busy timeout."""
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() == "wal":
                return
            problem = f"the journal mode stays {mode!r}"
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            problem = str(error)
        if time.monotonic() > deadline:
            raise StoreError(f"cannot put the SQLite store in WAL mode: {problem}")
        time.sleep(0.02)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for reads: one consistent snapshot on SQLite, read committed on PostgreSQL."""
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that commits on success and rolls back on any exception, leaving nothing half-written."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn
