"""Fixtures for the store suite: every ``store`` test runs once on SQLite and once on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth, user ``postgres`` or ``root``). The session creates a
fresh, uniquely named database, migrates it once and truncates it before each test; SQLite tests copy a
migrated template file. When the server is unreachable the PostgreSQL variants skip with the reason, unless
``COHORT_PIPELINE_REQUIRE_POSTGRES=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from cohort_pipeline.store import CohortStore, ProjectRecord
from cohort_pipeline.store.schema import cohorts, memberships, metadata

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USERS = ("postgres", "root")
REQUIRE_POSTGRES_ENV = "COHORT_PIPELINE_REQUIRE_POSTGRES"
T0 = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


class FakeClock:
    """A settable clock for the store: tests move time explicitly."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class PostgresServer:
    """Admin access to the local server: create and drop throwaway databases."""

    user: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{PG_HOST}:{PG_PORT}/{database}"

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=self.user, dbname="postgres", connect_timeout=3, autocommit=True
        )

    def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # throwaway data: do not wait for the WAL flush on every commit (the suite commits a lot)
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _connect_postgres() -> PostgresServer:
    problems = []
    for user in PG_USERS:
        try:
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", connect_timeout=3
            ) as conn:
                conn.execute("SELECT 1")
            return PostgresServer(user)
        except psycopg.Error as exc:
            problems.append(f"user {user}: {str(exc).strip()}")
    reason = f"PostgreSQL on {PG_HOST}:{PG_PORT} not reachable: {'; '.join(problems)}"
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_POSTGRES_ENV}=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The local PostgreSQL server, or a skip (a failure under ``COHORT_PIPELINE_REQUIRE_POSTGRES=1``)."""
    return _connect_postgres()


@pytest.fixture(scope="session")
def postgres_template_url(postgres_server: PostgresServer) -> Iterator[str]:
    """One migrated database for the whole session, dropped at the end."""
    name = postgres_server.create_database("cohort_pipeline_store_test")
    url = postgres_server.url(name)
    try:
        store = CohortStore(url)
        store.migrate()
        store.close()
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("store_template") / "store.db"
    store = CohortStore(f"sqlite:///{path}")
    store.migrate()
    store.close()
    return path


def _empty_all_tables(engine: sa.Engine) -> None:
    """Delete every row and restart the id sequences (cheaper than TRUNCATE for these tiny tables)."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for table in metadata.sorted_tables:
            if "id" in table.c and table.c.id.autoincrement is True:
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 1, false)")


@pytest.fixture(scope="session")
def postgres_cleaner(postgres_template_url: str) -> Iterator[sa.Engine]:
    """One connection pool for emptying the session database between tests."""
    engine = sa.create_engine(postgres_template_url, poolclass=sa.pool.StaticPool)
    try:
        yield engine
    finally:
        engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_template_url")
    _empty_all_tables(request.getfixturevalue("postgres_cleaner"))
    return url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a brand-new database without any table, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty' / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("cohort_pipeline_store_empty")
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[CohortStore]:
    """A store on an empty migrated database with a fake clock."""
    cohort_store = CohortStore(store_url, clock=clock)
    try:
        yield cohort_store
    finally:
        cohort_store.close()


@pytest.fixture
def project(store: CohortStore) -> ProjectRecord:
    return store.create_project("Default project")


def force_cohort_state(store: CohortStore, cohort_id: int, **values: Any) -> None:
    """Set calculation columns directly (scheduling tests need states that take many runs to reach)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(cohorts).where(cohorts.c.id == cohort_id).values(**values))


def rows_of(store: CohortStore, table: sa.Table, **where: Any) -> list[Any]:
    """Raw rows of a table, read around the store (to check what it really wrote)."""
    statement = sa.select(table).where(*(table.c[name] == value for name, value in where.items()))
    with store.engine.connect() as conn:
        return list(conn.execute(statement).all())


def stored_person_ids(store: CohortStore, cohort_id: int) -> list[str]:
    """The raw ``memberships`` rows of a dynamic cohort, sorted: always exactly its published members."""
    return sorted(row.person_id for row in rows_of(store, memberships, cohort_id=cohort_id))
