"""load_project / list_projects and the committed sample: one project never sees another's rows."""

from __future__ import annotations

import filecmp
from pathlib import Path

import polars as pl
import pytest

from cohort_pipeline.errors import DataSourceError
from cohort_pipeline.sources import EVENTS_SCHEMA, ProjectData, list_projects, load_project, table_schema
from cohort_pipeline.sources.generator import SAMPLE_PROJECTS, generate_sample

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"


def _person_ids(project: ProjectData) -> set[str]:
    return set(project.persons.select("id").collect().to_series())


def test_sample_lists_its_two_projects() -> None:
    assert list_projects(SAMPLE_DIR) == [1, 2]


def test_sample_projects_hold_disjoint_persons() -> None:
    one, two = load_project(SAMPLE_DIR, 1), load_project(SAMPLE_DIR, 2)
    assert _person_ids(one).isdisjoint(_person_ids(two))
    for table in ("persons", "person_distinct_ids", "events"):
        assert getattr(one, table).collect_schema() == table_schema(table)


def test_a_distinct_id_shared_by_two_projects_resolves_within_its_own_project() -> None:
    """``user_1000`` exists in both projects; loading project 1 must resolve it to project 1's person only."""
    one, two = load_project(SAMPLE_DIR, 1), load_project(SAMPLE_DIR, 2)
    ids_one = one.person_distinct_ids.collect()
    ids_two = two.person_distinct_ids.collect()
    shared = set(ids_one["distinct_id"]) & set(ids_two["distinct_id"])
    assert "user_1000" in shared
    owners_one = set(ids_one.filter(pl.col("distinct_id").is_in(shared))["person_id"])
    assert owners_one <= _person_ids(one)
    assert owners_one.isdisjoint(_person_ids(two))


def test_events_of_project_one_resolve_only_to_project_one_persons() -> None:
    one, two = load_project(SAMPLE_DIR, 1), load_project(SAMPLE_DIR, 2)
    actors = set(
        one.events.join(one.person_distinct_ids, on="distinct_id").select("person_id").unique().collect().to_series()
    )
    assert actors and actors <= _person_ids(one)
    assert actors.isdisjoint(_person_ids(two))


def test_sample_sizes_and_file_budget() -> None:
    for project_id, (persons, events) in SAMPLE_PROJECTS.items():
        project = load_project(SAMPLE_DIR, project_id)
        assert project.persons.select(pl.len()).collect().item() == persons
        assert project.events.select(pl.len()).collect().item() == events
    files = [path for path in SAMPLE_DIR.rglob("*.parquet")]
    assert len(files) == 6
    assert sum(path.stat().st_size for path in files) < 1_500_000


def test_committed_sample_is_what_generate_sample_writes(tmp_path: Path) -> None:
    """Guards against a generator change that forgets to regenerate data/sample."""
    generate_sample(tmp_path)
    for project_id in SAMPLE_PROJECTS:
        committed, fresh = SAMPLE_DIR / f"project_{project_id}", tmp_path / f"project_{project_id}"
        names = sorted(path.name for path in fresh.iterdir())
        match, mismatch, errors = filecmp.cmpfiles(committed, fresh, names, shallow=False)
        assert (mismatch, errors) == ([], []), "data/sample is stale: run generate_sample(Path('data/sample'))"


def test_project_without_events_file_has_no_events(tmp_path: Path) -> None:
    project_dir = tmp_path / "project_5"
    project_dir.mkdir()
    (project_dir / "persons.csv").write_text("id,created_at,properties\np1,2026-01-01,{}\n")
    (project_dir / "person_distinct_ids.csv").write_text("distinct_id,person_id\nd1,p1\n")
    project = load_project(tmp_path, 5)
    events = project.events.collect()
    assert events.height == 0
    assert events.schema == EVENTS_SCHEMA


def test_missing_project_directory(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as failure:
        load_project(tmp_path, 9)
    assert str(failure.value) == f"{tmp_path / 'project_9'}: project directory not found"


def test_missing_required_table_names_the_project_folder(tmp_path: Path) -> None:
    (tmp_path / "project_3").mkdir()
    (tmp_path / "project_3" / "persons.csv").write_text("id\np1\n")
    with pytest.raises(DataSourceError, match=r"project_3: no person_distinct_ids file"):
        load_project(tmp_path, 3)


def test_list_projects_orders_numerically_and_ignores_other_entries(tmp_path: Path) -> None:
    for name in ("project_10", "project_2", "project_x", "projects_3", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "project_4").write_text("a file, not a folder")
    assert list_projects(tmp_path) == [2, 10]


def test_list_projects_of_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="data directory not found"):
        list_projects(tmp_path / "nope")
