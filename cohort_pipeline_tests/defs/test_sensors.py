"""The sensors and the stale-cohort schedule, evaluated against a real store and an ephemeral Dagster instance:
what they register, which runs they request (with the versions requested at request time), and what they leave
alone (no flood on the first tick, back-off after errors, nothing after 20 consecutive errors)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from cohort_pipeline.defs.partitions import COHORTS
from cohort_pipeline.defs.schedules import recalculate_stale_cohorts
from cohort_pipeline.defs.sensors import cohort_changes_sensor, new_data_sensor
from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline_tests.defs.conftest import Pipeline, copy_sample_data, failures, published_copy
from cohort_pipeline_tests.service.helpers import (
    absolute_csv_paths,
    dynamic,
    person_leaf,
    persons_where,
    sample_json,
    write_json,
)

DYNAMIC = [c for c in range(1, 22) if c not in (9, 10, 11)] + [101]
BEHAVIOURAL = list(range(14, 22))


def tick(pipeline: Pipeline, sensor: dg.SensorDefinition, cursor: str | None) -> dg.SensorResult:
    """Evaluate ``sensor`` once and apply its partition requests, as the daemon does."""
    context = dg.build_sensor_context(instance=pipeline.instance, cursor=cursor,
                                      resources={"settings": pipeline.settings}, definitions=pipeline.location)
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        pipeline.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def requested(result: dg.SensorResult | list[dg.RunRequest] | dg.SkipReason
              ) -> list[tuple[str, list[str], dict[str, int]]]:
    """(job, partition keys, requested versions) of each run request."""
    if isinstance(result, dg.SkipReason):
        return []
    requests = result.run_requests if isinstance(result, dg.SensorResult) else result
    found = []
    for request in requests or []:
        versions = request.run_config.get("ops", {}).get("cohort_membership", {}).get("config", {}).get("versions", {})
        found.append((request.job_name, list(versions), versions))
    return found


def run_requested(pipeline: Pipeline, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute one requested recalculation run in-process (what the run launcher does)."""
    versions = request.run_config["ops"]["cohort_membership"]["config"]["versions"]
    return pipeline.run(list(versions), versions=versions)


# --- the cohort sensor -------------------------------------------------------------------------------------------


def test_first_tick_on_a_fresh_store_syncs_the_definitions_file_once(pipeline: Pipeline) -> None:
    first = tick(pipeline, cohort_changes_sensor, None)
    assert [r.job_name for r in first.run_requests] == ["sync_cohort_definitions"]
    assert not first.dynamic_partitions_requests
    second = tick(pipeline, cohort_changes_sensor, first.cursor)  # the sync has not run yet: no second request
    assert second.run_requests == []


def test_first_tick_registers_every_cohort_and_requests_nothing(pipeline: Pipeline) -> None:
    pipeline.sync()
    for key in list(pipeline.partitions):  # the cohorts exist in the store, but the sensor has never run
        pipeline.instance.delete_dynamic_partition(COHORTS, key)

    first = tick(pipeline, cohort_changes_sensor, None)

    assert first.run_requests == []
    assert len(pipeline.partitions) == 23 and pipeline.partitions[0] == "p1-c1"
    assert all(c.pending_version is None for p in (1, 2) for c in pipeline.store.list_cohorts(p))
    assert tick(pipeline, cohort_changes_sensor, first.cursor).run_requests == []


def test_a_new_cohort_is_registered_requested_and_published(published: Pipeline) -> None:
    baseline = tick(published, cohort_changes_sensor, None)
    assert baseline.run_requests == []
    created = published.store.create_cohort(2, name="Pro plan", filters=dynamic(
        0, "", person_leaf("plan", "exact", "pro"))["filters"], created_by="api")
    published.store.request_calculation(created.id)  # the API requests a version when it saves

    result = tick(published, cohort_changes_sensor, baseline.cursor)

    key = f"p2-c{created.id}"
    assert published.partitions[-1] == key
    assert requested(result) == [("recalculate_cohorts", [key], {key: 2})]  # the API's 1, then the sensor's 2
    assert result.run_requests[0].partition_key == key
    run = run_requested(published, result.run_requests[0])
    assert run.success, failures(run)
    cohort = published.store.get_cohort(2, created.id)
    assert (cohort.version, cohort.count, cohort.is_calculating) == (
        2, len(persons_where(2, lambda p: p.get("plan") == "pro")), False)
    assert tick(published, cohort_changes_sensor, result.cursor).run_requests == []


def test_edited_dynamic_cohorts_are_requested_in_contiguous_runs(published: Pipeline) -> None:
    baseline = tick(published, cohort_changes_sensor, None)
    store = published.store
    for cohort_id in (2, 3, 5):
        store.update_cohort(1, cohort_id, description="edited")
    store.update_cohort(1, 9, name="VIP customers, renamed")  # static: never recalculated for an edit

    result = tick(published, cohort_changes_sensor, baseline.cursor)

    assert requested(result) == [
        ("recalculate_cohorts", ["p1-c2", "p1-c3"], {"p1-c2": 2, "p1-c3": 2}),
        ("recalculate_cohorts", ["p1-c5"], {"p1-c5": 2}),
    ]
    assert result.run_requests[0].tags["dagster/asset_partition_range_end"] == "p1-c3"
    assert store.get_cohort(1, 2).is_calculating and store.get_cohort(1, 2).pending_version == 2
    assert store.get_cohort(1, 9).pending_version == 1
    again = tick(published, cohort_changes_sensor, result.cursor)
    assert again.run_requests == []  # seen once


def test_dependents_are_recalculated_after_their_dependency(published: Pipeline) -> None:
    baseline = tick(published, cohort_changes_sensor, None)
    assert published.run(["p1-c1"]).success  # cohort 1 has a newer version than 7, 8 and 13, which reference it

    result = tick(published, cohort_changes_sensor, baseline.cursor)

    assert [keys for _, keys, _ in requested(result)] == [["p1-c7", "p1-c8"], ["p1-c13"], ["p1-c21"]]
    for request in result.run_requests:
        assert run_requested(published, request).success
    assert tick(published, cohort_changes_sensor, result.cursor).run_requests == []


def test_an_edited_definitions_file_is_synced_once(published: Pipeline, tmp_path: Path) -> None:
    baseline = tick(published, cohort_changes_sensor, None)
    assert baseline.run_requests == []
    spec = absolute_csv_paths(sample_json())
    spec["projects"][1]["cohorts"].append(dynamic(103, "Pro plan", person_leaf("plan", "exact", "pro")))
    published.reconfigure(definitions_path=str(write_json(tmp_path / "edited.json", spec)))

    result = tick(published, cohort_changes_sensor, baseline.cursor)
    assert [r.job_name for r in result.run_requests] == ["sync_cohort_definitions"]
    assert tick(published, cohort_changes_sensor, result.cursor).run_requests == []


# --- the data sensor ---------------------------------------------------------------------------------------------


def _touch(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_new_event_data_recalculates_the_behavioural_cohorts_of_that_project(
        location: dg.Definitions, published_template: Path, tmp_path: Path) -> None:
    data = copy_sample_data(tmp_path)
    pipeline = published_copy(location, published_template, tmp_path, data_dir=data)
    baseline = tick(pipeline, new_data_sensor, None)
    assert baseline.run_requests == [] and "baseline" in baseline.skip_reason.skip_message
    assert tick(pipeline, new_data_sensor, baseline.cursor).run_requests == []

    _touch(data / "project_1" / "events.parquet")
    events = tick(pipeline, new_data_sensor, baseline.cursor)
    jobs = requested(events)
    assert jobs[0][0] == "refresh_data"
    assert [keys for job, keys, _ in jobs[1:]] == [[f"p1-c{c}" for c in BEHAVIOURAL]]

    _touch(data / "project_2" / "persons.parquet")
    persons = tick(pipeline, new_data_sensor, events.cursor)
    assert [keys for _, keys, _ in requested(persons)[1:]] == [["p2-c101", "p2-c102"]]  # 102: its CSV may match now


# --- the stale-cohort schedule -----------------------------------------------------------------------------------


@pytest.fixture
def scheduled(location: dg.Definitions, published_template: Path, tmp_path: Path) -> Pipeline:
    """Like ``published``, with an on-disk Dagster instance (a schedule context needs one)."""
    return published_copy(location, published_template, tmp_path, persistent=True)


def schedule_tick(pipeline: Pipeline, at: datetime) -> list[dg.RunRequest] | dg.SkipReason:
    # the context opens its own handle on the instance: close it, or the handle outlives this test
    with dg.build_schedule_context(instance=pipeline.instance, scheduled_execution_time=at,
                                   resources={"settings": pipeline.settings}) as context:
        return recalculate_stale_cohorts(context)


def test_the_schedule_recalculates_stale_dynamic_cohorts_with_back_off(scheduled: Pipeline) -> None:
    store = scheduled.store
    now = datetime.now(UTC)
    skipped = schedule_tick(scheduled, now)
    assert isinstance(skipped, dg.SkipReason)  # everything was calculated moments ago

    version = store.request_calculation(2)
    store.record_failure(2, version, "boom")  # one error: back off for 30 min x 2^1
    for _ in range(21):
        store.record_failure(3, store.request_calculation(3), "boom")  # 21 errors: never again

    soon = schedule_tick(scheduled, now + timedelta(minutes=16))
    keys = [key for _, group, _ in requested(soon) for key in group]
    assert keys == [f"p{2 if c > 100 else 1}-c{c}" for c in DYNAMIC if c not in (2, 3)]
    assert store.get_cohort(1, 1).is_calculating

    later = schedule_tick(scheduled, now + timedelta(minutes=65))
    keys = [key for _, group, _ in requested(later) for key in group]
    assert "p1-c2" in keys and "p1-c3" not in keys


def test_the_schedule_resets_cohorts_stuck_calculating_for_over_an_hour(scheduled: Pipeline) -> None:
    store = scheduled.store
    store.request_calculation(4)  # requested, but the run never happened
    now = datetime.now(UTC)
    assert "p1-c4" not in [k for _, g, _ in requested(schedule_tick(scheduled, now + timedelta(minutes=30)))
                           for k in g]
    recovered = schedule_tick(scheduled, now + timedelta(minutes=61))
    assert store.get_cohort(1, 4).errors_calculating == 1
    assert "p1-c4" not in [k for _, g, _ in requested(recovered) for k in g]  # backing off after the reset


def test_the_stale_age_is_configurable(scheduled: Pipeline) -> None:
    scheduled.reconfigure(stale_after_minutes=60)
    now = datetime.now(UTC)
    assert isinstance(schedule_tick(scheduled, now + timedelta(minutes=30)), dg.SkipReason)
    assert requested(schedule_tick(scheduled, now + timedelta(minutes=61)))


@pytest.mark.parametrize("key", ["p1-c1", "p2-c101"])
def test_requested_versions_are_what_the_run_publishes(published: Pipeline, key: str) -> None:
    parsed = CohortKey.parse(key)
    version = published.store.request_calculation(parsed.cohort_id)
    result = published.run([key], versions={key: version})
    assert result.success, failures(result)
    assert published.store.get_cohort(parsed.project_id, parsed.cohort_id).version == version == 2
