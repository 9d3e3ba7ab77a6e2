"""The small decisions behind the sensors and the schedule: partition keys, contiguous run ranges, the cohort
sensor's cursor (ties on ``updated_at`` are neither missed nor seen twice), the definitions snapshot, and when a
static cohort is imported again."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cohort_pipeline.service.cohort_keys import CohortKey, by_project, cohort_key
from cohort_pipeline.service.definitions_file import DefinitionsFileError
from cohort_pipeline.service.definitions_snapshot import (
    definitions_fingerprint,
    load_snapshot,
    sync_definitions,
    synced_fingerprint,
)
from cohort_pipeline.service.recalculation import static_import_reason
from cohort_pipeline.service.scheduling import cohort_changes, partition_ranges, versions_for
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import (
    SAMPLE_DEFINITIONS,
    UPLOADS,
    absolute_csv_paths,
    sample_json,
    write_json,
)


def test_cohort_keys_are_readable_and_round_trip() -> None:
    assert cohort_key(1, 7) == "p1-c7" and CohortKey.parse("p12-c3400") == CohortKey(12, 3400)
    assert by_project([CohortKey(2, 1), CohortKey(1, 9), CohortKey(1, 2)]) == {
        1: [CohortKey(1, 2), CohortKey(1, 9)], 2: [CohortKey(2, 1)]}
    for bad in ("1-7", "p1-c", "p0-c7", "p1-c07", "P1-C7", "p1-c7 "):
        with pytest.raises(ValueError, match="is not a cohort partition key"):
            CohortKey.parse(bad)


def test_partition_ranges_follow_the_partition_order() -> None:
    ordered = ["p1-c1", "p1-c2", "p1-c10", "p1-c3", "p2-c5"]  # Dagster's order is the order of registration
    assert partition_ranges(ordered, ["p1-c1", "p1-c2", "p1-c3", "p2-c5", "p9-c9"]) == [
        ["p1-c1", "p1-c2"], ["p1-c3", "p2-c5"]]
    assert partition_ranges(ordered, []) == []
    assert versions_for(["p1-c1", "p1-c2"], {CohortKey(1, 1): 4}) == {"p1-c1": 4}


def test_the_cohort_cursor_sees_each_change_once_even_at_the_same_instant(tmp_path: Path) -> None:
    clock = [datetime(2026, 11, 1, tzinfo=UTC)]
    store = CohortStore(f"sqlite:///{tmp_path / 's.db'}", clock=lambda: clock[0])
    store.migrate()
    store.create_project("p", project_id=1)
    filters = {"properties": {"type": "AND", "values": [{"type": "person", "key": "a", "operator": "is_set"}]}}
    first = store.create_cohort(1, name="a", filters=filters)
    baseline = cohort_changes(store, [], None)
    assert baseline.baseline and baseline.new_partitions == [str(CohortKey(1, first.id))]
    assert baseline.to_calculate == {}  # the first tick adopts what exists
    known = baseline.new_partitions

    second = store.create_cohort(1, name="b", filters=filters)  # the same updated_at as the cursor
    seen = cohort_changes(store, known, baseline.cursor)
    assert seen.to_calculate == {CohortKey(1, second.id): "new cohort"}
    assert json.loads(seen.cursor)["ids"] == sorted([first.id, second.id])
    known += seen.new_partitions
    assert cohort_changes(store, known, seen.cursor).to_calculate == {}

    clock[0] += timedelta(microseconds=1)
    store.update_cohort(1, first.id, description="edited")
    edited = cohort_changes(store, known, seen.cursor)
    assert edited.to_calculate == {CohortKey(1, first.id): "definition edited"}
    assert cohort_changes(store, known, edited.cursor).to_calculate == {}


def test_the_snapshot_keeps_the_last_valid_definitions(tmp_path: Path) -> None:
    store = CohortStore(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    state = tmp_path / "state"
    assert load_snapshot(state).projects == {} and synced_fingerprint(state) is None
    report = sync_definitions(store, SAMPLE_DEFINITIONS, state)
    assert synced_fingerprint(state) == definitions_fingerprint(SAMPLE_DEFINITIONS) == report.fingerprint
    snapshot = load_snapshot(state)
    vip = next(c for c in snapshot.project(1).cohorts if c.id == 9)
    assert vip.csv == (UPLOADS / "vip_customers.csv").read_bytes()
    assert snapshot.project(1).actions == sample_json()["projects"][0]["actions"]

    spec = absolute_csv_paths(sample_json())
    spec["projects"][0]["cohorts"][0]["filters"] = {"properties": {"type": "NAND", "values": []}}
    broken = write_json(tmp_path / "broken.json", spec)
    assert definitions_fingerprint(broken) != report.fingerprint
    with pytest.raises(DefinitionsFileError):
        sync_definitions(store, broken, state)
    assert synced_fingerprint(state) == report.fingerprint

    for _ in range(3):
        sync_definitions(store, SAMPLE_DEFINITIONS, state)
    assert len([p for p in (state / "definitions").iterdir() if p.is_dir()]) == 2  # old snapshots are removed


def test_a_changed_upload_changes_the_fingerprint(tmp_path: Path) -> None:
    upload = tmp_path / "uploads" / "vip_customers.csv"
    upload.parent.mkdir()
    upload.write_bytes((UPLOADS / "vip_customers.csv").read_bytes())
    definitions = write_json(tmp_path / "cohorts.json", sample_json())
    before = definitions_fingerprint(definitions)
    upload.write_bytes(upload.read_bytes() + b"user_1006\n")
    assert definitions_fingerprint(definitions) != before
    assert definitions_fingerprint(tmp_path / "missing.json") is None


def test_static_cohorts_are_imported_on_creation_and_when_persons_are_added(tmp_path: Path) -> None:
    store = CohortStore(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    store.create_project("p", project_id=1)
    record = store.create_cohort(1, name="vip", is_static=True)
    sync_definitions(store, SAMPLE_DEFINITIONS, tmp_path / "state")
    upload = next(c for c in load_snapshot(tmp_path / "state").project(1).cohorts if c.id == 9)
    snapshot = next(c for c in load_snapshot(tmp_path / "state").project(1).cohorts if c.id == 11)
    calculated = datetime(2026, 11, 1, tzinfo=UTC)
    assert static_import_reason(record, upload, None) == "first population"
    done = replace(record, version=1, last_calculation=calculated)
    assert static_import_reason(done, upload, calculated - timedelta(days=1)) is None
    assert static_import_reason(done, upload, calculated + timedelta(seconds=1)) == (
        "persons were added since the last import")
    assert static_import_reason(done, snapshot, calculated + timedelta(days=1)) is None  # criteria: taken once
    assert static_import_reason(done, None, calculated + timedelta(days=1)) is None  # populated by the API
