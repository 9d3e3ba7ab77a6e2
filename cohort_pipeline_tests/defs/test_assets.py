"""Materializing the cohort assets against a temporary store: every cohort is published with the counts the
service layer calculates; one broken cohort fails the run by name while the others are published; an invalid
definitions file changes nothing."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.service.calculate import calculate_project
from cohort_pipeline.service.definitions_file import load_definitions
from cohort_pipeline.sources import load_project
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import (
    SAMPLE,
    SAMPLE_DEFINITIONS,
    UPLOADS,
    absolute_csv_paths,
    dynamic,
    person_leaf,
    persons_where,
    sample_json,
    store_copy,
    store_snapshot,
    write_json,
)


def settings_for(definitions: Path, store_url: str) -> CohortPipelineSettings:
    return CohortPipelineSettings(data_dir=str(SAMPLE), definitions_path=str(definitions), store_url=store_url)


def materialize(location: dg.Definitions, settings: CohortPipelineSettings,
                selection: list[str] | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(location.assets or []), resources={"settings": settings}, selection=selection,
                          raise_on_error=False)


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """step -> the message Dagster shows for its failure: a ``Failure``'s description, else the exception raised
    in the asset (which Dagster reports as the cause of its "Error occurred while executing op")."""
    found = {}
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None:
                found[event.step_key] = data.user_failure_data.description
            else:
                found[event.step_key] = (data.error.cause or data.error).message.strip()
    return found


def expected_counts(definitions: Path) -> dict[int, int | None]:
    """Counts by the service layer directly (the sample's date filters are absolute: ``now`` does not matter)."""
    counts = {}
    for project in load_definitions(definitions):
        result = calculate_project(project, load_project(SAMPLE, project.id), now=datetime.now(UTC))
        counts.update({o.cohort_id: o.count for o in result.outcomes})
    return counts


@pytest.fixture(scope="module")
def sample_run(location: dg.Definitions, store_template: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[dg.ExecuteInProcessResult, CohortStore]:
    store, url = store_copy(store_template, tmp_path_factory.mktemp("sample_run"))
    return materialize(location, settings_for(SAMPLE_DEFINITIONS, url)), store


def test_materializing_publishes_every_cohort(sample_run: tuple[dg.ExecuteInProcessResult, CohortStore]) -> None:
    result, store = sample_run
    assert result.success, failures(result)
    expected = expected_counts(SAMPLE_DEFINITIONS)
    assert None not in expected.values()
    published = {c.id: c for p in (1, 2) for c in store.list_cohorts(p)}
    assert sorted(published) == sorted(expected)
    for cohort_id, count in expected.items():
        cohort = published[cohort_id]
        assert (cohort.version, cohort.count, cohort.is_calculating, cohort.errors_calculating) == (1, count, False, 0)
        assert len(store.members(cohort_id)) == count


def test_materialization_metadata(sample_run: tuple[dg.ExecuteInProcessResult, CohortStore]) -> None:
    result, _ = sample_run
    metadata = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
                for m in result.asset_materializations_for_node("persons")
                + result.asset_materializations_for_node("events")
                + result.asset_materializations_for_node("cohort_membership")
                + result.asset_materializations_for_node("cohort_definitions")}
    # sizes from data/sample/README.md
    assert metadata["persons"] == {"dagster/row_count": 550, "project_1": 400, "project_2": 150}
    assert metadata["events"] == {"dagster/row_count": 19_000, "project_1": 15_000, "project_2": 4_000}
    assert metadata["cohort_definitions"] == {"projects": 2, "cohorts": 23}
    membership = metadata["cohort_membership"]
    assert membership["cohorts"] == 23
    assert membership["dagster/row_count"] == sum(expected_counts(SAMPLE_DEFINITIONS).values())
    assert membership["counts"].startswith("| project | cohort | name | kind | count |")


def test_a_broken_cohort_fails_the_run_by_name_and_the_others_are_published(
    location: dg.Definitions, store_template: Path, tmp_path: Path
) -> None:
    shutil.copytree(UPLOADS, tmp_path / "uploads")
    (tmp_path / "uploads" / "broken.csv").write_bytes(b"\xff\xfe garbage")
    spec = sample_json()
    spec["projects"][0]["cohorts"].append(
        {"id": 90, "name": "Broken upload", "is_static": True, "csv": "uploads/broken.csv"})
    definitions = write_json(tmp_path / "cohorts.json", spec)
    store, url = store_copy(store_template, tmp_path)

    result = materialize(location, settings_for(definitions, url))

    assert not result.success
    assert failures(result) == {"cohort_membership": (
        "1 of 24 cohorts failed; the others were published.\n"
        "cohort 90 (Broken upload): csv: CSV file encoding is not supported. Please save your file as UTF-8 and "
        "try again.")}
    broken = store.get_cohort(1, 90)
    assert (broken.version, broken.count, broken.errors_calculating) == (None, None, 1)
    assert store.calculation_history(90)[0].error.startswith("csv: CSV file encoding is not supported.")
    for cohort_id, count in expected_counts(SAMPLE_DEFINITIONS).items():
        project_id = 2 if cohort_id > 100 else 1
        assert (store.get_cohort(project_id, cohort_id).version, store.get_cohort(project_id, cohort_id).count) == (
            1, count)


def test_cohort_membership_alone_picks_up_a_new_cohort(
    location: dg.Definitions, store_template: Path, tmp_path: Path
) -> None:
    """The membership asset syncs the definitions itself, so materializing it alone after an edit works."""
    store, url = store_copy(store_template, tmp_path)
    assert materialize(location, settings_for(SAMPLE_DEFINITIONS, url)).success
    spec = absolute_csv_paths(sample_json())
    spec["projects"][1]["cohorts"].append(dynamic(103, "Pro plan", person_leaf("plan", "exact", "pro")))
    definitions = write_json(tmp_path / "cohorts.json", spec)

    result = materialize(location, settings_for(definitions, url), selection=["cohort_membership"])

    assert result.success, failures(result)
    added = store.get_cohort(2, 103)
    assert (added.version, added.count) == (1, len(persons_where(2, lambda p: p.get("plan") == "pro")))
    assert store.get_cohort(2, 101).version == 2


def test_an_invalid_definitions_file_changes_nothing(
    location: dg.Definitions, store_template: Path, tmp_path: Path
) -> None:
    store, url = store_copy(store_template, tmp_path)
    assert materialize(location, settings_for(SAMPLE_DEFINITIONS, url)).success
    before = store_snapshot(store)
    spec = absolute_csv_paths(sample_json())
    spec["projects"][0]["cohorts"][0]["name"] = "Renamed, but never saved"
    spec["projects"][1]["cohorts"][0]["filters"]["properties"]["values"][0]["operator"] = "likes"
    definitions = write_json(tmp_path / "cohorts.json", spec)

    result = materialize(location, settings_for(definitions, url))

    assert not result.success
    assert failures(result)["cohort_definitions"].startswith(
        "cohort_pipeline.service.definitions_file.DefinitionsFileError: project 2, cohort 101 (Free plan): "
        "filters.properties.values[0]: Unknown operator 'likes' for person filter.")
    assert store_snapshot(store) == before
