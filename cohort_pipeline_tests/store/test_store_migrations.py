"""Schema migrations and store construction (URLs, SQLite files, PostgreSQL driver selection)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cohort_pipeline.store import STORE_URL_ENV, CohortStore, StoreError, default_store_url
from cohort_pipeline.store.engine import normalise_url
from cohort_pipeline.store.migrate import current_revision, downgrade, head_revision
from cohort_pipeline.store.schema import cohorts, metadata

TABLES = {
    "projects", "cohorts", "static_members", "memberships", "calculation_history", "api_keys", "feature_flags"
}
HEAD = "0005"

VERSIONED_MEMBERSHIPS = sa.table(
    "memberships", sa.column("cohort_id"), sa.column("version"), sa.column("person_id")
)
"""``memberships`` as revisions 0001-0003 shaped it (one row set per version), frozen for these tests."""
PUBLISHED_MEMBERSHIPS = sa.table("memberships", sa.column("cohort_id"), sa.column("person_id"))
"""``memberships`` from 0004 on: the published members only."""
COHORTS_0004 = sa.table("cohorts", sa.column("id"), sa.column("project_id"), sa.column("name"),
                        sa.column("created_at"), sa.column("updated_at"))
"""The ``cohorts`` columns a row needs under revisions 0001-0004 (the runtime table has later columns)."""


def _create_cohort(store: CohortStore, project_id: int, name: str) -> int:
    """A cohort row written at an older revision, where the runtime ``cohorts`` table does not exist yet."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        return int(conn.execute(
            COHORTS_0004.insert().values(project_id=project_id, name=name, created_at=now, updated_at=now)
            .returning(COHORTS_0004.c.id)
        ).scalar_one())


def _tables(store: CohortStore) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names()) - {"alembic_version"}


def test_migrate_builds_the_schema_on_an_empty_database(empty_database_url: str) -> None:
    store = CohortStore(empty_database_url)
    try:
        assert store.is_migrated() is False
        assert _tables(store) == set()
        assert store.migrate() == head_revision() == HEAD
        assert store.is_migrated() is True
        assert _tables(store) == TABLES
        assert store.migrate() == HEAD  # idempotent
        project = store.create_project("works")
        assert store.get_project(project.id) == project
    finally:
        store.close()


def test_migrations_match_the_runtime_metadata(empty_database_url: str) -> None:
    """A column added to schema.py without a migration (or the reverse) fails here."""
    store = CohortStore(empty_database_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            assert compare_metadata(context, metadata) == []
    finally:
        store.close()


def test_downgrade_to_base_and_upgrade_again(empty_database_url: str) -> None:
    store = CohortStore(empty_database_url)
    try:
        store.migrate()
        downgrade(store.engine, "base")
        assert current_revision(store.engine) is None
        assert _tables(store) == set()
        assert store.migrate() == HEAD
    finally:
        store.close()


def _rows(store: CohortStore, table: sa.TableClause) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(table).order_by(*table.c))]


def _memberships_sql(store: CohortStore) -> str | None:
    if store.backend != "sqlite":
        return None
    with store.engine.connect() as conn:
        sql: str = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'memberships'").scalar_one()
    return sql


def test_migration_0003_keeps_every_membership_row(empty_database_url: str) -> None:
    """0003 rebuilds ``memberships`` as a WITHOUT ROWID table on SQLite (a no-op on PostgreSQL); rows written
    under 0002 survive the upgrade and the downgrade."""
    store = CohortStore(empty_database_url)
    rows = [{"cohort_id": c, "version": v, "person_id": p} for c in (1, 2) for v in (1, 2) for p in ("b", "a", "é")]
    try:
        assert store.migrate("0002") == "0002"
        with store.engine.begin() as conn:
            conn.execute(VERSIONED_MEMBERSHIPS.insert(), rows)
        assert store.migrate("0003") == "0003"
        after = _rows(store, VERSIONED_MEMBERSHIPS)
        if store.backend == "sqlite":
            assert "WITHOUT ROWID" in str(_memberships_sql(store))
        assert after == sorted(rows, key=lambda r: (r["cohort_id"], r["version"], r["person_id"]))
        downgrade(store.engine, "0002")
        assert _rows(store, VERSIONED_MEMBERSHIPS) == after
        if store.backend == "sqlite":
            assert "WITHOUT ROWID" not in str(_memberships_sql(store))
    finally:
        store.close()


def test_migration_0004_keeps_only_the_published_members(empty_database_url: str) -> None:
    """0004 drops the version column and keeps each cohort's published version only: a stale older version and
    a newer candidate a crashed run left behind are dropped, as are rows of a never-published cohort. The
    downgrade gives the published rows back with the published version number."""
    store = CohortStore(empty_database_url)
    try:
        assert store.migrate("0003") == "0003"
        project = store.create_project("migrated")
        published = _create_cohort(store, project.id, "published")
        never = _create_cohort(store, project.id, "never published")
        other = _create_cohort(store, project.id, "other")
        with store.engine.begin() as conn:
            conn.execute(sa.update(cohorts).where(cohorts.c.id == published).values(version=2, pending_version=3))
            conn.execute(sa.update(cohorts).where(cohorts.c.id == other).values(version=1, pending_version=1))
            conn.execute(
                VERSIONED_MEMBERSHIPS.insert(),
                [{"cohort_id": published, "version": 1, "person_id": p} for p in ("old", "kept")]  # stale
                + [{"cohort_id": published, "version": 2, "person_id": p} for p in ("kept", "é", "", "b")]  # published
                + [{"cohort_id": published, "version": 3, "person_id": p} for p in ("candidate", "kept")]  # candidate
                + [{"cohort_id": never, "version": 1, "person_id": "orphan"}]
                + [{"cohort_id": other, "version": 1, "person_id": p} for p in ("kept", "z")],
            )
        assert store.migrate() == HEAD
        expected = sorted(
            [(published, p) for p in ("kept", "é", "", "b")] + [(other, "kept"), (other, "z")]
        )
        assert _rows(store, PUBLISHED_MEMBERSHIPS) == [{"cohort_id": c, "person_id": p} for c, p in expected]
        if store.backend == "sqlite":
            assert "WITHOUT ROWID" in str(_memberships_sql(store))
        assert store.members(published) == ["", "b", "kept", "é"]
        assert store.members(never) == []
        with store.engine.connect() as conn:
            names = {column["name"] for column in sa.inspect(conn).get_columns("memberships")}
            primary_key = sa.inspect(conn).get_pk_constraint("memberships")
        assert names == {"cohort_id", "person_id"}
        assert primary_key["name"] == "pk_memberships"
        assert primary_key["constrained_columns"] == ["cohort_id", "person_id"]

        version = store.request_calculation(published)  # publishing on the migrated table diffs as usual
        result = store.publish(published, version, ["kept", "new"], started_at=datetime.now(UTC))
        assert (result.entered, result.exited, result.previous_version) == (1, 3, 2)

        downgrade(store.engine, "0003")
        versions = {published: version, other: 1}
        members_after = sorted([(published, "kept"), (published, "new"), (other, "kept"), (other, "z")])
        assert _rows(store, VERSIONED_MEMBERSHIPS) == [
            {"cohort_id": c, "version": versions[c], "person_id": p} for c, p in members_after
        ]
        if store.backend == "sqlite":
            assert "WITHOUT ROWID" in str(_memberships_sql(store))
        assert store.migrate() == HEAD  # and up again
        assert _rows(store, PUBLISHED_MEMBERSHIPS) == [{"cohort_id": c, "person_id": p} for c, p in members_after]
    finally:
        store.close()


def test_concurrent_migrations_do_not_collide(empty_database_url: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        store = CohortStore(empty_database_url)
        try:
            store.migrate()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_default_url_is_a_sqlite_file_under_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_store_url() == f"sqlite:///{tmp_path}/.cohort_pipeline/store.db"
    store = CohortStore()  # creates the folder on first use
    try:
        store.migrate()
        assert (tmp_path / ".cohort_pipeline" / "store.db").is_file()
    finally:
        store.close()


def test_environment_variable_overrides_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/elsewhere/s.db"
    monkeypatch.setenv(STORE_URL_ENV, url)
    assert default_store_url() == url
    assert str(CohortStore().url) == url


def test_in_memory_sqlite_keeps_one_database() -> None:
    store = CohortStore("sqlite://")
    try:
        store.migrate()
        project = store.create_project("in memory")
        assert store.list_projects() == [project]
    finally:
        store.close()


def test_plain_postgresql_urls_use_psycopg() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_unsupported_backends_are_refused() -> None:
    with pytest.raises(StoreError, match="unsupported store backend 'mysql'"):
        CohortStore("mysql://u@h/db")


def test_repr_hides_the_password() -> None:
    store = CohortStore("postgresql://user:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in repr(store)
