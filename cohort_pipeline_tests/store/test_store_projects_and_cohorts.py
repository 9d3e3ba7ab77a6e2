"""Projects and cohort definitions: CRUD, storage-level validation, isolation between projects."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest
import sqlalchemy as sa

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store import CohortStore, ConflictError, NotFoundError, ProjectRecord
from cohort_pipeline.store.schema import cohorts

from .conftest import FakeClock, rows_of

EMAIL_LEAF = {"key": "email", "type": "person", "value": ["@x.com"], "operator": "icontains"}
FILTERS = {"properties": {"type": "OR", "values": [{"type": "AND", "values": [EMAIL_LEAF]}]}}


# --- projects -------------------------------------------------------------------------------------------


def test_projects_round_trip(store: CohortStore, clock: FakeClock) -> None:
    test_filters = [{"key": "email", "type": "person", "value": "@posthog.com", "operator": "not_icontains"}]
    created = store.create_project("Shop", timezone="Europe/Berlin", test_account_filters=test_filters)
    assert created == store.get_project(created.id)
    assert (created.name, created.timezone, created.test_account_filters) == ("Shop", "Europe/Berlin", test_filters)
    assert created.created_at == clock.now
    assert created.created_at.tzinfo is UTC
    assert store.create_project("Second").timezone == "UTC"
    assert [p.name for p in store.list_projects()] == ["Shop", "Second"]


def test_explicit_project_ids_do_not_break_automatic_ones(store: CohortStore) -> None:
    assert store.create_project("pinned", project_id=7).id == 7
    assert store.create_project("auto").id == 8
    with pytest.raises(ConflictError):
        store.create_project("again", project_id=7)


def test_update_project(store: CohortStore, project: ProjectRecord) -> None:
    updated = store.update_project(project.id, timezone="America/New_York", test_account_filters=[])
    assert (updated.name, updated.timezone) == (project.name, "America/New_York")
    assert store.update_project(project.id) == updated
    with pytest.raises(TypeError, match="unexpected"):
        store.update_project(project.id, colour="red")  # type: ignore[call-arg]
    with pytest.raises(NotFoundError):
        store.update_project(999, name="x")


@pytest.mark.parametrize(
    ("kwargs", "attr"),
    [({"timezone": "Mars/Olympus"}, "timezone"), ({"name": ""}, "name"), ({"name": "x" * 401}, "name"),
     ({"test_account_filters": ["not an object"]}, "test_account_filters")],
)
def test_invalid_projects_are_refused(store: CohortStore, kwargs: dict[str, object], attr: str) -> None:
    arguments: dict[str, object] = {"name": "p", **kwargs}
    with pytest.raises(CohortValidationError) as info:
        store.create_project(**arguments)  # type: ignore[arg-type]
    assert info.value.attr == attr
    assert store.list_projects() == []


def test_unknown_project_is_not_found(store: CohortStore) -> None:
    with pytest.raises(NotFoundError, match="project 42 not found"):
        store.get_project(42)
    with pytest.raises(KeyError):  # NotFoundError is a KeyError for plain Python callers
        store.get_project(42)
    with pytest.raises(NotFoundError):
        store.create_cohort(42, name="orphan")


# --- cohorts --------------------------------------------------------------------------------------------


def test_a_new_cohort_has_the_documented_defaults(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    cohort = store.create_cohort(project.id)
    assert cohort.project_id == project.id
    assert (cohort.name, cohort.description, cohort.filters, cohort.query, cohort.groups) == (None, "", None, None, [])
    assert (cohort.is_static, cohort.deleted, cohort.is_calculating) == (False, False, False)
    assert (cohort.version, cohort.pending_version, cohort.count, cohort.errors_calculating) == (None, None, None, 0)
    assert (cohort.last_calculation, cohort.last_error_at, cohort.last_calculation_duration_ms) == (None, None, None)
    assert (cohort.cohort_type, cohort.created_by) == (None, None)
    assert cohort.created_at == cohort.updated_at == clock.now


def test_cohort_json_fields_round_trip(store: CohortStore, project: ProjectRecord) -> None:
    query = {"kind": "HogQLQuery", "query": "select person_id from events"}
    groups = [{"properties": [{"key": "$os", "value": "Mac"}], "days": None}]
    cohort = store.create_cohort(
        project.id, name="Mac users", description="d", filters=FILTERS, query=query, groups=groups,
        is_static=True, cohort_type="static", created_by="user@example.com",
    )
    again = store.get_cohort(project.id, cohort.id)
    assert again == cohort
    assert (again.filters, again.query, again.groups, again.created_by) == (FILTERS, query, groups, "user@example.com")


def test_missing_filters_are_sql_null(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, filters=None)
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(cohorts.c.id).where(cohorts.c.filters.is_(None))).scalars().all()
    assert found == [cohort.id]


def test_records_are_snapshots(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, filters=FILTERS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cohort.name = "changed"  # type: ignore[misc]
    assert cohort.filters is not None
    cohort.filters["properties"]["type"] = "AND"
    assert store.get_cohort(project.id, cohort.id).filters == FILTERS


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"name": "n" * 401}, "name"),
        ({"description": "d" * 1001}, "description"),
        ({"cohort_type": "realtime-ish"}, "cohort_type"),
        ({"filters": ["not", "an", "object"]}, "filters"),
        ({"filters": {"properties": {1, 2}}}, "filters"),
        ({"groups": "nope"}, "groups"),
        ({"is_static": "yes"}, "is_static"),
    ],
)
def test_invalid_cohort_fields_are_refused_and_nothing_is_written(
    store: CohortStore, project: ProjectRecord, fields: dict[str, object], attr: str
) -> None:
    with pytest.raises(CohortValidationError) as info:
        store.create_cohort(project.id, **fields)  # type: ignore[arg-type]
    assert info.value.attr == attr
    assert rows_of(store, cohorts) == []


def test_limits_are_inclusive(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, name="n" * 400, description="d" * 1000)
    assert len(store.get_cohort(project.id, cohort.id).name or "") == 400


def test_update_cohort_changes_only_writable_fields(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    cohort = store.create_cohort(project.id, name="before")
    clock.advance(minutes=1)
    updated = store.update_cohort(project.id, cohort.id, name="after", filters=FILTERS, cohort_type="realtime")
    assert (updated.name, updated.filters, updated.cohort_type) == ("after", FILTERS, "realtime")
    assert (updated.created_at, updated.updated_at) == (cohort.created_at, clock.now)
    with pytest.raises(TypeError, match="maintained by the store"):
        store.update_cohort(project.id, cohort.id, version=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        store.update_cohort(project.id, cohort.id, colour="red")  # type: ignore[call-arg]
    with pytest.raises(CohortValidationError):
        store.update_cohort(project.id, cohort.id, description="x" * 1001)
    assert store.get_cohort(project.id, cohort.id) == updated


def test_soft_delete_hides_and_restore_shows(store: CohortStore, project: ProjectRecord) -> None:
    kept = store.create_cohort(project.id, name="kept")
    gone = store.create_cohort(project.id, name="gone")
    deleted = store.soft_delete(project.id, gone.id)
    assert deleted.deleted is True
    assert [c.id for c in store.list_cohorts(project.id)] == [kept.id]
    assert [c.id for c in store.list_cohorts(project.id, include_deleted=True)] == [kept.id, gone.id]
    with pytest.raises(NotFoundError):
        store.get_cohort(project.id, gone.id)
    assert store.get_cohort(project.id, gone.id, include_deleted=True).deleted is True
    store.update_cohort(project.id, gone.id, deleted=False)
    assert store.get_cohort(project.id, gone.id).deleted is False


def test_cohorts_are_invisible_from_other_projects(store: CohortStore, project: ProjectRecord) -> None:
    other = store.create_project("Other")
    cohort = store.create_cohort(project.id, name="mine")
    for call in (
        lambda: store.get_cohort(other.id, cohort.id),
        lambda: store.get_cohort(other.id, cohort.id, include_deleted=True),
        lambda: store.update_cohort(other.id, cohort.id, name="stolen"),
        lambda: store.soft_delete(other.id, cohort.id),
    ):
        with pytest.raises(NotFoundError, match=f"cohort {cohort.id} not found"):
            call()
    assert store.list_cohorts(other.id) == []
    assert store.get_cohort(project.id, cohort.id).name == "mine"


def test_explicit_cohort_ids_are_kept_and_do_not_break_automatic_ones(
    store: CohortStore, project: ProjectRecord
) -> None:
    pinned = store.create_cohort(project.id, name="pinned", cohort_id=50)
    assert pinned.id == 50
    automatic = store.create_cohort(project.id, name="automatic")
    assert automatic.id > 50
    with pytest.raises(ConflictError):
        store.create_cohort(project.id, name="again", cohort_id=50)
    assert [c.name for c in store.list_cohorts(project.id)] == ["pinned", "automatic"]
