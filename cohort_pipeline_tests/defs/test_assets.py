"""Materializing the cohort assets against a temporary store: every cohort is published with the counts the
service layer calculates, with per-partition metadata and quality checks; static cohorts are imported once and
again only when persons are added; bad input (a broken upload, an invalid definitions file, an invalid stored
definition, missing or malformed data, a failed dependency) fails the run by name while every other cohort is
published; an ``as_of`` run reproduces a past membership."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cohort_pipeline.defs.local_run import refresh_everything
from cohort_pipeline.service.definitions_snapshot import load_snapshot
from cohort_pipeline_tests.defs.conftest import (
    NOW,
    Pipeline,
    check_evaluations,
    copy_sample_data,
    expected_counts,
    failures,
    make_pipeline,
    membership_metadata,
)
from cohort_pipeline_tests.service.helpers import (
    UPLOADS,
    absolute_csv_paths,
    dynamic,
    person_leaf,
    persons_where,
    sample_json,
    store_snapshot,
    write_json,
)

STATIC = {9, 10, 11, 102}


def counts_in_store(pipeline: Pipeline) -> dict[int, tuple[int | None, int | None]]:
    """cohort id -> (version, count) as readers see it."""
    return {c.id: (c.version, c.count) for p in pipeline.store.list_projects() for c in pipeline.store.list_cohorts(p.id)}


# --- the happy path ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refreshed(location: dg.Definitions, store_template: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[dg.ExecuteInProcessResult, Pipeline]:
    """``refresh_cohorts`` over every cohort (what ``cohort-pipeline run`` executes), as of NOW."""
    pipeline = make_pipeline(location, store_template, tmp_path_factory.mktemp("refreshed"))
    result = refresh_everything(pipeline.settings, pipeline.instance, as_of="2026-11-01T12:00:00Z")
    assert result is not None
    return result, pipeline


def test_refresh_publishes_every_cohort_with_the_service_layer_counts(
        refreshed: tuple[dg.ExecuteInProcessResult, Pipeline]) -> None:
    result, pipeline = refreshed
    assert result.success, failures(result)
    expected = expected_counts()
    assert None not in expected.values()
    assert {cid: count for cid, (_, count) in counts_in_store(pipeline).items()} == expected
    for project in pipeline.store.list_projects():
        for cohort in pipeline.store.list_cohorts(project.id):
            assert (cohort.version, cohort.is_calculating, cohort.errors_calculating) == (1, False, 0)
            assert len(pipeline.store.members(cohort.id)) == expected[cohort.id]
            assert pipeline.store.calculation_history(cohort.id)[0].count == expected[cohort.id]


def test_every_partition_has_its_own_materialization_metadata(
        refreshed: tuple[dg.ExecuteInProcessResult, Pipeline]) -> None:
    result, _ = refreshed
    expected = expected_counts()
    metadata = membership_metadata(result)
    assert sorted(metadata) == sorted(f"p{2 if c > 100 else 1}-c{c}" for c in expected)
    paying = metadata["p1-c1"]
    assert (paying["count"], paying["dagster/row_count"], paying["version"]) == (expected[1],) * 2 + (1,)
    assert (paying["entered"], paying["exited"], paying["status"]) == (expected[1], 0, "published")
    assert paying["cohort"] == "Paying customers (dynamic)"
    assert paying["as_of"] == "2026-11-01T12:00:00+00:00"
    preview = paying["members"].splitlines()
    assert preview[0] == "| person_id | email | name |" and len(preview) == 2 + 5 + 1  # header, 5 members, "more"
    assert preview[-1] == f"| ... {expected[1] - 5:,} more | | |"
    vip = metadata["p1-c9"]  # uploads/vip_customers.csv: 6 ids, one matches nobody
    assert (vip["ids_submitted"], vip["matched"], vip["unmatched"], vip["count"]) == (6, 5, 1, 5)
    assert vip["source"] == "csv:uploads/c9/vip_customers.csv"


def test_every_quality_check_ran_for_every_cohort_and_passed(
        refreshed: tuple[dg.ExecuteInProcessResult, Pipeline]) -> None:
    result, _ = refreshed
    evaluations = check_evaluations(result)
    assert len(evaluations) == 23 * 7
    assert all(e.passed for e in evaluations.values())
    assert evaluations[("p1-c1", "members_are_known_persons")].blocking
    assert not evaluations[("p1-c1", "size_change_within_threshold")].blocking


def test_data_property_and_summary_assets(refreshed: tuple[dg.ExecuteInProcessResult, Pipeline]) -> None:
    result, pipeline = refreshed
    metadata = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
                for node in ("persons", "events", "property_definitions", "cohort_counts",
                             "cohort_calculation_history", "cohort_definitions")
                for m in result.asset_materializations_for_node(node)}
    # sizes from data/sample/README.md
    assert {k: v for k, v in metadata["persons"].items() if k != "dagster/column_schema"} == {
        "dagster/row_count": 550, "project_1": 400, "project_2": 150}
    assert metadata["events"]["dagster/row_count"] == 19_000
    assert (metadata["cohort_definitions"]["projects"], metadata["cohort_definitions"]["cohorts"]) == (2, 23)
    assert metadata["cohort_counts"]["dagster/row_count"] == 23
    assert metadata["cohort_counts"]["members"] == sum(expected_counts().values())
    assert metadata["cohort_calculation_history"]["dagster/row_count"] == 23
    catalogue = pl.read_csv(Path(pipeline.settings.state_dir) / "property_definitions.csv")
    declared = catalogue.filter(pl.col("source") == "declared")
    assert metadata["property_definitions"]["declared"] == declared.height > 0
    assert metadata["property_definitions"]["reused_projects"] == 0
    plan = catalogue.filter((pl.col("project_id") == 1) & (pl.col("table") == "persons") & (pl.col("key") == "plan"))
    assert plan.select("property_type", "source").row(0) == ("String", "inferred")
    counts = pl.read_csv(Path(pipeline.settings.state_dir) / "cohort_counts.csv")
    assert dict(zip(counts["cohort_id"], counts["count"], strict=True)) == expected_counts()
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and e.event_specific_data.check_name == "data_contract"]
    assert len(checks) == 3 and all(e.event_specific_data.passed for e in checks)


def test_the_property_catalogue_of_unchanged_data_is_reused(published: Pipeline) -> None:
    """A second run over the same data files and declared types reuses each project's catalogue; the file it
    writes is the same."""
    catalogue_path = Path(published.settings.state_dir) / "property_definitions.csv"
    reused, catalogues = [], []
    job = published.location.resolve_job_def("refresh_data")
    run_config = {"resources": {"settings": {"config": published.settings.model_dump()}}}
    for _ in range(2):
        result = job.execute_in_process(run_config=run_config, instance=published.instance, raise_on_error=False)
        assert result.success, failures(result)
        (materialization,) = result.asset_materializations_for_node("property_definitions")
        reused.append(materialization.metadata["reused_projects"].value)
        catalogues.append(pl.read_csv(catalogue_path))
    assert reused == [0, 2]
    assert catalogues[0].equals(catalogues[1])


# --- static cohorts ----------------------------------------------------------------------------------------------


def _add_person(data_dir: Path, project_id: int, person_id: str, distinct_id: str) -> None:
    folder = data_dir / f"project_{project_id}"
    persons = pl.read_parquet(folder / "persons.parquet")
    row = {c: None for c in persons.columns} | {"id": person_id, "properties": "{}"}
    row["created_at"] = persons["created_at"].max()
    pl.concat([persons, pl.DataFrame([row], schema=persons.schema)]).write_parquet(folder / "persons.parquet")
    ids = pl.read_parquet(folder / "person_distinct_ids.parquet")
    new = {c: None for c in ids.columns} | {"distinct_id": distinct_id, "person_id": person_id}
    pl.concat([ids, pl.DataFrame([new], schema=ids.schema)]).write_parquet(folder / "person_distinct_ids.parquet")


def test_static_cohorts_are_imported_once_and_again_only_when_persons_are_added(
        location: dg.Definitions, store_template: Path, tmp_path: Path) -> None:
    data = copy_sample_data(tmp_path)
    pipeline = make_pipeline(location, store_template, tmp_path, data_dir=data)
    pipeline.sync()
    assert pipeline.run().success

    second = pipeline.run()
    assert second.success, failures(second)
    state = counts_in_store(pipeline)
    assert {cid for cid, (version, _) in state.items() if version == 1} == STATIC  # dynamic ones are at version 2
    assert membership_metadata(second)["p1-c9"]["status"] == "unchanged"
    assert len(pipeline.store.calculation_history(9)) == 1

    _add_person(data, 1, "new-person-of-user-99999", "user_99999")  # the VIP upload's unmatched id
    third = pipeline.run()
    assert third.success, failures(third)
    vip = pipeline.store.get_cohort(1, 9)
    assert (vip.version, vip.count) == (2, 6)
    assert "new-person-of-user-99999" in pipeline.store.members(9)
    assert membership_metadata(third)["p1-c9"]["unmatched"] == 0
    assert pipeline.store.get_cohort(1, 11).version == 1  # a criteria snapshot is never re-taken


# --- partitions: one cohort, or many in one fused pass ----------------------------------------------------------


def test_a_single_partition_reads_its_dependencies_from_their_published_version(published: Pipeline) -> None:
    """Cohort 8 is "paying customers (1) not in the beta (4)". Narrow cohort 1 in the store: a run of cohort 8 alone
    still reads the published cohort 1; a run over 1..8 evaluates 1 first, in the same pass, and 8 follows."""
    store = published.store
    before = counts_in_store(published)
    store.update_cohort(1, 1, filters={"properties": {"type": "AND", "values": [
        person_leaf("plan", "exact", "pro"), person_leaf("country", "exact", "DE")]}})

    alone = published.run(["p1-c8"])
    assert alone.success, failures(alone)
    assert store.get_cohort(1, 8).count == before[8][1]
    assert store.get_cohort(1, 1).version == 1  # not in the run: untouched

    together = published.run([f"p1-c{i}" for i in range(1, 9)])
    assert together.success, failures(together)
    pro_de = persons_where(1, lambda p: p.get("plan") == "pro" and p.get("country") == "DE")
    beta = set(store.members(4))
    assert store.get_cohort(1, 1).count == len(pro_de)
    assert set(store.members(8)) == pro_de - beta
    assert store.get_cohort(1, 8).version == 3


def test_obsolete_versions_exit_without_publishing(published: Pipeline) -> None:
    store = published.store
    requested = store.request_calculation(2)
    newer = store.request_calculation(2)
    result = published.run(["p1-c2"], versions={"p1-c2": requested})
    assert result.success, failures(result)
    assert membership_metadata(result) == {}  # nothing materialized
    cohort = store.get_cohort(1, 2)
    assert (cohort.version, cohort.pending_version, cohort.errors_calculating) == (1, newer, 0)
    assert len(store.calculation_history(2)) == 1

    current = published.run(["p1-c2"], versions={"p1-c2": newer})
    assert current.success and store.get_cohort(1, 2).version == newer


def test_as_of_reproduces_a_past_membership(published: Pipeline) -> None:
    later = NOW + timedelta(days=45)
    result = published.run(["p1-c14"], as_of=later.isoformat())
    assert result.success, failures(result)
    at_now, at_later = expected_counts()[14], expected_counts(now=later)[14]
    assert at_now != at_later  # "viewed pricing in the last 90 days" depends on when you ask
    assert published.store.get_cohort(1, 14).count == at_later
    assert membership_metadata(result)["p1-c14"]["as_of"] == later.isoformat()

    again = published.run(["p1-c14"])
    assert published.store.get_cohort(1, 14).count == at_now and again.success


def test_a_bad_as_of_fails_before_anything_changes(published: Pipeline) -> None:
    before = store_snapshot(published.store)
    result = published.run(["p1-c1"], as_of="last tuesday")
    assert failures(result) == {"cohort_membership": "as_of: 'last tuesday' is not an ISO-8601 datetime "
                                                     "(e.g. 2026-11-01T12:00:00Z)"}
    assert store_snapshot(published.store) == before


# --- quality checks block the publish ----------------------------------------------------------------------------


def test_a_broken_candidate_is_not_published_and_readers_keep_the_previous_version(
        published: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cohort 1's candidate gains a member who is not a person and a duplicate row: the blocking checks fail for
    cohort 1, it is not published, and neither are cohorts 7 and 8, computed from it in the same pass."""
    import cohort_pipeline.service.recalculation as recalculation

    real = recalculation.calculate_project

    def broken(*args, **kwargs):
        result = real(*args, **kwargs)
        first = result.memberships.filter(pl.col("cohort_id") == 1).head(1)
        extra = pl.DataFrame({"cohort_id": [1], "person_id": ["not-a-person"]}, schema=result.memberships.schema)
        result.memberships = pl.concat([result.memberships, first, extra])
        result.outcomes = [o if o.cohort_id != 1 else type(o)(**{**o.__dict__, "count": o.count + 2})
                           for o in result.outcomes]
        return result

    monkeypatch.setattr(recalculation, "calculate_project", broken)
    store = published.store
    members_before = store.members(1)

    result = published.run([f"p1-c{i}" for i in range(1, 9)])

    assert not result.success
    message = failures(result)["cohort_membership"]
    assert message.startswith("3 of 8 cohorts failed; the others were published.\n"
                              "cohort 1 (Paying customers): Quality checks failed: pairs_unique: ")
    assert "members_are_known_persons: members who are not persons of the project: 1 row in cohort 1, e.g. " \
           "cohort 1 person 'not-a-person'." in message
    assert "cohort 8 (Paying customers not in the beta): Referenced cohort 1 failed: Quality checks failed" in message
    paying = store.get_cohort(1, 1)
    assert (paying.version, paying.count, paying.errors_calculating, paying.is_calculating) == (
        1, len(members_before), 1, False)
    assert store.members(1) == members_before
    history = store.calculation_history(1)[0]
    assert (history.error_code, history.version) == ("validation_error", 2)
    assert store.get_cohort(1, 7).version == store.get_cohort(1, 8).version == 1
    assert {c: store.get_cohort(1, c).version for c in (2, 3, 4, 5, 6)} == dict.fromkeys((2, 3, 4, 5, 6), 2)
    evaluations = check_evaluations(result)
    assert not evaluations[("p1-c1", "members_are_known_persons")].passed
    assert not evaluations[("p1-c1", "pairs_unique")].passed
    assert evaluations[("p1-c2", "members_are_known_persons")].passed
    assert sorted(membership_metadata(result)) == [f"p1-c{i}" for i in range(2, 7)]


def test_a_sudden_size_change_warns_and_still_publishes(published: Pipeline) -> None:
    published.store.update_cohort(1, 1, filters={"properties": {"type": "AND", "values": [
        person_leaf("email", "is_set")]}})
    result = published.run(["p1-c1"])
    assert result.success, failures(result)
    warning = check_evaluations(result)[("p1-c1", "size_change_within_threshold")]
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.description.startswith("size changed by more than 50% against the published count: cohort 1")
    assert published.store.get_cohort(1, 1).version == 2
    assert membership_metadata(result)["p1-c1"]["check size_change_within_threshold"] == warning.description


# --- bad input ---------------------------------------------------------------------------------------------------


def test_a_broken_upload_fails_the_run_by_name_and_the_others_are_published(
        location: dg.Definitions, store_template: Path, tmp_path: Path) -> None:
    shutil.copytree(UPLOADS, tmp_path / "uploads")
    (tmp_path / "uploads" / "broken.csv").write_bytes(b"\xff\xfe garbage")
    spec = sample_json()
    spec["projects"][0]["cohorts"].append(
        {"id": 90, "name": "Broken upload", "is_static": True, "csv": "uploads/broken.csv"})
    definitions = write_json(tmp_path / "cohorts.json", spec)
    pipeline = make_pipeline(location, store_template, tmp_path, definitions=definitions)
    pipeline.sync()

    result = pipeline.run()

    assert not result.success
    assert failures(result) == {"cohort_membership": (
        "1 of 24 cohorts failed; the others were published.\n"
        "cohort 90 (Broken upload): csv: CSV file encoding is not supported. Please save your file as UTF-8 and "
        "try again.")}
    broken = pipeline.store.get_cohort(1, 90)
    assert (broken.version, broken.count, broken.errors_calculating) == (None, None, 1)
    assert pipeline.store.calculation_history(90)[0].error.startswith("csv: CSV file encoding is not supported.")
    assert {c: v for c, v in counts_in_store(pipeline).items() if c != 90} == {
        c: (1, n) for c, n in expected_counts().items()}
    assert "p1-c90" not in membership_metadata(result) and len(membership_metadata(result)) == 23


def test_an_invalid_definitions_file_changes_nothing_and_calculations_keep_the_last_valid_one(
        published: Pipeline, tmp_path: Path) -> None:
    before = store_snapshot(published.store)
    snapshot_before = load_snapshot(Path(published.settings.state_dir)).fingerprint
    spec = absolute_csv_paths(sample_json())
    spec["projects"][0]["cohorts"][0]["name"] = "Renamed, but never saved"
    spec["projects"][1]["cohorts"][0]["filters"]["properties"]["values"][0]["operator"] = "likes"
    published.reconfigure(definitions_path=str(write_json(tmp_path / "cohorts.json", spec)))

    result = published.location.resolve_job_def("sync_cohort_definitions").execute_in_process(
        run_config={"resources": {"settings": {"config": published.settings.model_dump()}}},
        instance=published.instance, raise_on_error=False)

    assert failures(result)["cohort_definitions"].startswith(
        "cohort_pipeline.service.definitions_file.DefinitionsFileError: project 2, cohort 101 (Free plan): "
        "filters.properties.values[0]: Unknown operator 'likes' for person filter.")
    assert store_snapshot(published.store) == before
    assert load_snapshot(Path(published.settings.state_dir)).fingerprint == snapshot_before

    recalculated = published.run(["p1-c1"])
    assert recalculated.success, failures(recalculated)
    assert published.store.get_cohort(1, 1).name == "Paying customers"


def test_an_invalid_stored_definition_fails_its_cohort_and_its_dependents_only(published: Pipeline) -> None:
    store = published.store
    members_before = store.members(4)
    store.update_cohort(1, 4, filters={"properties": {"type": "XOR", "values": [person_leaf("plan", "exact", "x")]}})

    result = published.run([f"p1-c{i}" for i in range(1, 9)])

    message = failures(result)["cohort_membership"]
    lines = message.splitlines()
    assert lines[0] == "2 of 8 cohorts failed; the others were published."
    assert lines[1].startswith("cohort 4 (Beta programme members): invalid definition: ")
    assert lines[2].startswith("cohort 8 (Paying customers not in the beta): Referenced cohort 4 failed: "
                               "invalid definition: ")
    beta = store.get_cohort(1, 4)
    assert (beta.version, beta.errors_calculating, store.members(4)) == (1, 1, members_before)
    assert store.calculation_history(4)[0].error == lines[1].removeprefix("cohort 4 (Beta programme members): ")
    assert [store.get_cohort(1, c).version for c in (1, 2, 3, 5, 6, 7, 8)] == [2, 2, 2, 2, 2, 2, 1]


def test_missing_or_malformed_data_fails_that_projects_cohorts_only(
        location: dg.Definitions, store_template: Path, tmp_path: Path) -> None:
    data = copy_sample_data(tmp_path)
    (data / "project_2" / "events.parquet").write_bytes(b"PAR1 this is not parquet")
    pipeline = make_pipeline(location, store_template, tmp_path, data_dir=data)
    pipeline.sync()

    result = pipeline.run(job="refresh_cohorts")

    message = failures(result)["cohort_membership"]
    assert message.startswith("2 of 23 cohorts failed; the others were published.\ncohort 101 (Free plan): ")
    assert "events.parquet" in message
    history = pipeline.store.calculation_history(101)[0]
    assert "events.parquet" in history.error and history.version == 1
    state = counts_in_store(pipeline)
    assert state[101] == state[102] == (None, None)
    assert all(version == 1 for cid, (version, _) in state.items() if cid < 100)
    contract = {e.step_key: e.event_specific_data for e in result.all_events
                if e.event_type_value == "ASSET_CHECK_EVALUATION"
                and e.event_specific_data.check_name == "data_contract"}
    assert not contract["events"].passed and "project 2:" in contract["events"].description
    assert contract["persons"].passed

    shutil.rmtree(data / "project_2")
    again = pipeline.run(job="recalculate_cohorts")
    assert f"cohort 101 (Free plan): {data / 'project_2'}: project directory not found" in \
        failures(again)["cohort_membership"]
    assert pipeline.store.get_cohort(2, 101).errors_calculating == 2


def test_definitions_edits_reach_the_store_through_the_sync(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.sync()
    spec = absolute_csv_paths(sample_json())
    spec["projects"][1]["cohorts"].append(dynamic(103, "Pro plan", person_leaf("plan", "exact", "pro")))
    pipeline.reconfigure(definitions_path=str(write_json(tmp_path / "edited.json", spec)))
    pipeline.sync()
    result = pipeline.run(["p2-c103"])
    assert result.success, failures(result)
    added = pipeline.store.get_cohort(2, 103)
    assert (added.version, added.count) == (1, len(persons_where(2, lambda p: p.get("plan") == "pro")))
    snapshot = json.loads((Path(pipeline.settings.state_dir) / "definitions" / "current.json").read_text())
    assert snapshot["source"] == str((tmp_path / "edited.json").resolve())
    assert pipeline.store.get_cohort(2, 101).version is None  # only the partition that ran


def test_a_deleted_cohort_is_skipped_and_the_run_goes_on(published: Pipeline) -> None:
    published.store.soft_delete(1, 2)
    result = published.run(["p1-c1", "p1-c2", "p1-c3"])
    assert result.success, failures(result)
    assert sorted(membership_metadata(result)) == ["p1-c1", "p1-c3"]
    assert published.store.get_cohort(1, 2, include_deleted=True).version == 1
    assert published.store.get_cohort(1, 3).version == 2
