"""sync_project and publish_project: the store follows the definitions file (with its ids), every calculation is
published as a new version (spec 1.3) with the entered/exited diff, and a failure is recorded without touching
what readers see."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.service.calculate import calculate_project
from cohort_pipeline.service.definitions_file import ProjectSpec, load_definitions
from cohort_pipeline.service.publish import publish_project, sync_project
from cohort_pipeline.sources import EVENTS_SCHEMA, PERSON_DISTINCT_IDS_SCHEMA, PERSONS_SCHEMA, ProjectData
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import (
    absolute_csv_paths,
    cohort_leaf,
    dynamic,
    person_leaf,
    sample_cohort,
    sample_json,
    store_snapshot,
    write_json,
)

T1 = datetime(2026, 11, 1, 12, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
PRO = person_leaf("plan", "exact", "pro")


def tiny_data(plans: dict[str, str | None]) -> ProjectData:
    """Persons p1.. with a ``plan`` (None: no such key); distinct id ``d<n>`` for person ``p<n>``."""
    persons = pl.DataFrame(
        {"id": list(plans), "created_at": [T1] * len(plans),
         "properties": [json.dumps({} if plan is None else {"plan": plan}) for plan in plans.values()]},
        schema=PERSONS_SCHEMA)
    ids = pl.DataFrame({"distinct_id": [f"d{p[1:]}" for p in plans], "person_id": list(plans)},
                       schema=PERSON_DISTINCT_IDS_SCHEMA)
    return ProjectData(persons.lazy(), ids.lazy(), pl.LazyFrame(schema=EVENTS_SCHEMA))


def load_file(path: Path, spec: dict[str, Any]) -> list[ProjectSpec]:
    return load_definitions(write_json(path, spec))


def run(store: CohortStore, project: ProjectSpec, data: ProjectData, at: datetime):
    sync_project(store, project)
    result = calculate_project(project, data, now=at)
    return result, publish_project(store, result, started_at=at, finished_at=at + timedelta(seconds=1))


# --------------------------------------------------------------------------------------------------------------
# sync
# --------------------------------------------------------------------------------------------------------------


def test_first_sync_creates_projects_and_cohorts_with_the_files_ids(
    store: CohortStore, sample_projects: dict[int, ProjectSpec]
) -> None:
    raw = sample_json()
    for project in sample_projects.values():
        sync_project(store, project)

    assert [p.id for p in store.list_projects()] == [1, 2]
    for project_json in raw["projects"]:
        stored = store.get_project(project_json["id"])
        assert (stored.name, stored.timezone, stored.test_account_filters) == (
            project_json["name"], project_json["timezone"], project_json.get("test_account_filters", []))
        cohorts = store.list_cohorts(project_json["id"])
        assert [c.id for c in cohorts] == [c["id"] for c in project_json["cohorts"]]
        for cohort, cohort_json in zip(cohorts, project_json["cohorts"], strict=True):
            assert cohort.project_id == project_json["id"]
            assert cohort.name == cohort_json["name"]
            assert cohort.description == cohort_json.get("description", "")
            assert cohort.filters == cohort_json.get("filters")
            assert cohort.is_static == cohort_json.get("is_static", False)
            assert cohort.created_by == "definitions file"
            # never calculated yet (spec 1.3)
            assert (cohort.version, cohort.pending_version, cohort.count, cohort.is_calculating) == (
                None, None, None, False)


def test_resync_updates_only_what_the_file_changed(store: CohortStore, tmp_path: Path) -> None:
    spec = absolute_csv_paths(sample_json())
    [first, _] = load_file(tmp_path / "cohorts.json", spec)
    sync_project(store, first)
    before = {c.id: c for c in store.list_cohorts(1)}

    spec["projects"][0]["timezone"] = "America/New_York"
    spec["projects"][0]["test_account_filters"] = []
    edited = sample_cohort(spec, 1, 3)
    edited["name"] = "High scorers (score > 60)"
    edited["filters"]["properties"]["values"][0]["value"] = 60
    [second, _] = load_file(tmp_path / "cohorts.json", spec)
    sync_project(store, second)

    project = store.get_project(1)
    assert (project.timezone, project.test_account_filters) == ("America/New_York", [])
    after = {c.id: c for c in store.list_cohorts(1)}
    assert after[3].name == "High scorers (score > 60)"
    assert after[3].filters == edited["filters"]
    assert after[3].updated_at >= before[3].updated_at
    for cohort_id in set(before) - {3}:
        assert after[cohort_id] == before[cohort_id]  # untouched, not even updated_at


def test_a_cohort_deleted_in_the_store_but_in_the_file_is_restored(
    store: CohortStore, sample_projects: dict[int, ProjectSpec], sample_data: dict[int, ProjectData]
) -> None:
    sync_project(store, sample_projects[2])
    store.soft_delete(2, 101)
    _, outcomes = run(store, sample_projects[2], sample_data[2], T1)
    assert not store.get_cohort(2, 101).deleted
    assert all(o.published for o in outcomes)


# --------------------------------------------------------------------------------------------------------------
# publish
# --------------------------------------------------------------------------------------------------------------


def test_publishing_the_sample_makes_version_1_with_the_calculated_members(
    store: CohortStore, sample_projects: dict[int, ProjectSpec], sample_data: dict[int, ProjectData]
) -> None:
    for project_id, project in sample_projects.items():
        result, outcomes = run(store, project, sample_data[project_id], T1)
        assert [o.cohort_id for o in outcomes] == [c.id for c in project.cohorts]
        for calculated, published in zip(result.outcomes, outcomes, strict=True):
            assert (published.published, published.version, published.count, published.error) == (
                True, 1, calculated.count, None)
            stored = store.get_cohort(project_id, calculated.cohort_id)
            assert (stored.version, stored.count, stored.is_calculating, stored.errors_calculating) == (
                1, calculated.count, False, 0)
            assert store.members(calculated.cohort_id) == sorted(result.members_of(calculated.cohort_id))


def test_publishing_twice_gives_version_2_with_the_diff(store: CohortStore, tmp_path: Path) -> None:
    [project] = load_file(tmp_path / "c.json", {"projects": [{"id": 1, "name": "P", "cohorts": [
        dynamic(1, "Pro", PRO),
        {"id": 2, "name": "Listed", "is_static": True, "_create_static_person_ids": ["p1", "p2"]},
    ]}]})
    run(store, project, tiny_data({"p1": "pro", "p2": "pro", "p3": "free", "p4": None}), T1)
    assert store.members(1) == ["p1", "p2"]

    _, outcomes = run(store, project, tiny_data({"p1": "pro", "p2": "free", "p3": "pro", "p4": "pro"}), T2)

    pro = outcomes[0]
    assert (pro.published, pro.version, pro.count, pro.entered, pro.exited) == (True, 2, 3, 2, 1)
    assert store.members(1) == ["p1", "p3", "p4"]
    cohort = store.get_cohort(1, 1)
    assert (cohort.version, cohort.pending_version, cohort.count, cohort.last_calculation) == (
        2, 2, 3, T2 + timedelta(seconds=1))
    history = store.calculation_history(1)
    assert [(h.version, h.count, h.entered, h.exited, h.error) for h in history] == [
        (2, 3, 2, 1, None), (1, 2, 2, 0, None)]
    # a static population published again adds nobody (spec 7.4: idempotent)
    assert (outcomes[1].version, outcomes[1].count) == (2, 2)
    assert store.static_members(2) == ["p1", "p2"]


def test_a_failure_is_recorded_and_the_previous_members_stay_readable(
    store: CohortStore, tmp_path: Path
) -> None:
    (tmp_path / "list.csv").write_text("person_id\np1\np2\n", encoding="utf-8")
    spec = {"projects": [{"id": 1, "name": "P", "cohorts": [
        {"id": 1, "name": "Listed", "is_static": True, "csv": "list.csv"},
        dynamic(2, "Listed pros", cohort_leaf(1), PRO),
        dynamic(3, "Pros", PRO),
    ]}]}
    data = tiny_data({"p1": "pro", "p2": "pro", "p3": "pro"})
    [project] = load_file(tmp_path / "c.json", spec)
    run(store, project, data, T1)
    assert store.members(2) == ["p1", "p2"]

    (tmp_path / "list.csv").write_bytes(b"")  # the upload breaks
    [project] = load_file(tmp_path / "c.json", spec)
    _, outcomes = run(store, project, data, T2)

    empty = "csv: CSV file is empty. Please upload a CSV file with at least one row of data."
    assert [(o.cohort_id, o.published, o.version, o.error) for o in outcomes] == [
        (1, False, 2, empty),
        (2, False, 2, f"Referenced cohort 1 failed: {empty}"),
        (3, True, 2, None),
    ]
    failed = store.get_cohort(1, 2)
    assert (failed.version, failed.pending_version, failed.count, failed.errors_calculating,
            failed.is_calculating) == (1, 2, 2, 1, False)
    assert failed.last_error_at is not None
    assert store.members(2) == ["p1", "p2"]  # readers still see version 1
    assert [(h.version, h.error, h.error_code) for h in store.calculation_history(2)] == [
        (2, f"Referenced cohort 1 failed: {empty}", "validation_error"), (1, None, None)]
    static = store.get_cohort(1, 1)
    assert (static.errors_calculating, static.count) == (1, 2)
    assert store.static_members(1) == ["p1", "p2"]
    assert store.get_cohort(1, 3).errors_calculating == 0


def test_an_invalid_file_leaves_the_store_untouched(
    store: CohortStore, tmp_path: Path, sample_data: dict[int, ProjectData]
) -> None:
    """Validation comes first: a file that fails anywhere (here, a cohort id reused by the second project, which
    the store could not hold) is rejected before the first project is synced."""
    spec = absolute_csv_paths(sample_json())
    for project in load_file(tmp_path / "cohorts.json", spec):
        run(store, project, sample_data[project.id], T1)
    before = store_snapshot(store)

    sample_cohort(spec, 1, 1)["name"] = "Renamed"
    spec["projects"][1]["cohorts"].append(dynamic(3, "Reused id", PRO))
    with pytest.raises(CohortValidationError, match="cohort id 3 is used in project 1 and project 2"):
        for project in load_file(tmp_path / "cohorts.json", spec):
            run(store, project, sample_data[project.id], T2)
    assert store_snapshot(store) == before
