"""The versioning state machine of spec 1.3, on both backends."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from cohort_pipeline.store import (
    CohortStore,
    InvalidMembershipError,
    NotFoundError,
    ProjectRecord,
    PublishResult,
    VersionError,
)
from cohort_pipeline.store import versions as versions_module
from cohort_pipeline.store.schema import cohorts, memberships

from .conftest import FakeClock, rows_of, stored_person_ids

EMPTY_FILTERS = {"properties": {"type": "AND", "values": []}}


@pytest.fixture
def cohort_id(store: CohortStore, project: ProjectRecord) -> int:
    return store.create_cohort(project.id, name="Active users", filters=EMPTY_FILTERS).id


def _publish(
    store: CohortStore, clock: FakeClock, cohort_id: int, version: int, ids: list[str] | pl.Series
) -> PublishResult:
    return store.publish(cohort_id, version, ids, started_at=clock.now - timedelta(seconds=2), finished_at=clock.now)


# --- step 1: request ------------------------------------------------------------------------------------


def test_request_starts_pending_version_at_one_and_increments(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    assert store.get_cohort(project.id, cohort_id).pending_version is None
    assert store.request_calculation(cohort_id) == 1
    assert store.request_calculation(cohort_id) == 2
    cohort = store.get_cohort(project.id, cohort_id)
    assert (cohort.pending_version, cohort.version, cohort.is_calculating) == (2, None, True)
    assert cohort.calculation_requested_at == clock.now


def test_request_on_a_static_cohort_does_not_set_is_calculating(store: CohortStore, project: ProjectRecord) -> None:
    static = store.create_cohort(project.id, is_static=True)
    assert store.request_calculation(static.id) == 1
    assert store.get_cohort(project.id, static.id).is_calculating is False


def test_request_for_an_unknown_or_deleted_cohort_is_not_found(
    store: CohortStore, project: ProjectRecord, cohort_id: int
) -> None:
    with pytest.raises(NotFoundError):
        store.request_calculation(cohort_id + 1000)
    store.soft_delete(project.id, cohort_id)
    with pytest.raises(NotFoundError):
        store.request_calculation(cohort_id)


# --- step 2: obsolete -----------------------------------------------------------------------------------


def test_a_run_is_obsolete_once_a_newer_one_is_requested(store: CohortStore, cohort_id: int) -> None:
    first = store.request_calculation(cohort_id)
    assert store.is_obsolete(cohort_id, first) is False
    second = store.request_calculation(cohort_id)
    assert store.is_obsolete(cohort_id, first) is True
    assert store.is_obsolete(cohort_id, second) is False
    with pytest.raises(NotFoundError):
        store.is_obsolete(cohort_id + 1000, 1)


# --- steps 3, 4, 6: success -----------------------------------------------------------------------------


def test_never_calculated_cohort_has_no_members(store: CohortStore, project: ProjectRecord, cohort_id: int) -> None:
    store.request_calculation(cohort_id)  # requested but not finished: still nothing to read
    cohort = store.get_cohort(project.id, cohort_id)
    assert (cohort.version, cohort.count, cohort.last_calculation) == (None, None, None)
    assert store.members(cohort_id) == []
    frame = store.memberships_frame([cohort_id])
    assert frame.is_empty()
    assert frame.schema == pl.Schema({"cohort_id": pl.Int64, "person_id": pl.String})


def test_publish_flips_version_and_resets_error_state(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    failed = store.request_calculation(cohort_id)
    store.record_failure(cohort_id, failed, "boom", "timeout")
    clock.advance(minutes=5)
    version = store.request_calculation(cohort_id)
    result = store.publish(
        cohort_id, version, ["p2", "p1", "p3"], started_at=clock.now - timedelta(seconds=3), finished_at=clock.now
    )
    assert (result.published, result.version, result.count, result.previous_version) == (True, 2, 3, None)
    cohort = store.get_cohort(project.id, cohort_id)
    assert cohort.version == 2
    assert cohort.count == 3
    assert cohort.last_calculation == clock.now
    assert cohort.errors_calculating == 0
    assert cohort.last_error_at is None
    assert cohort.is_calculating is False
    assert cohort.last_calculation_duration_ms == 3000
    assert store.members(cohort_id) == ["p1", "p2", "p3"]


def test_count_is_the_number_of_distinct_people(store: CohortStore, cohort_id: int, clock: FakeClock) -> None:
    version = store.request_calculation(cohort_id)
    result = _publish(store, clock, cohort_id, version, ["a", "b", "a", "b", "c"])
    assert result.count == 3
    assert store.members(cohort_id) == ["a", "b", "c"]


def test_finished_at_defaults_to_now(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    version = store.request_calculation(cohort_id)
    store.publish(cohort_id, version, ["a"], started_at=clock.now)
    assert store.get_cohort(project.id, cohort_id).last_calculation == clock.now


def test_an_older_run_finishing_while_a_newer_is_pending_publishes_but_stays_calculating(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    first = store.request_calculation(cohort_id)
    second = store.request_calculation(cohort_id)
    assert _publish(store, clock, cohort_id, first, ["a"]).published is True
    cohort = store.get_cohort(project.id, cohort_id)
    assert (cohort.version, cohort.is_calculating) == (first, True)  # step 6: the newer run is still in flight
    assert store.members(cohort_id) == ["a"]
    assert _publish(store, clock, cohort_id, second, ["a", "b"]).published is True
    cohort = store.get_cohort(project.id, cohort_id)
    assert (cohort.version, cohort.is_calculating) == (second, False)
    assert store.members(cohort_id) == ["a", "b"]


def test_a_slow_obsolete_run_never_overwrites_a_newer_version(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    slow = store.request_calculation(cohort_id)
    fast = store.request_calculation(cohort_id)
    assert _publish(store, clock, cohort_id, fast, ["new"]).published is True
    clock.advance(minutes=1)
    result = _publish(store, clock, cohort_id, slow, ["old", "older"])
    assert (result.published, result.count, result.entered, result.exited) == (False, 2, 0, 0)
    assert result.previous_version == fast
    cohort = store.get_cohort(project.id, cohort_id)
    assert (cohort.version, cohort.count, cohort.is_calculating) == (fast, 1, False)
    assert store.members(cohort_id) == ["new"]
    assert stored_person_ids(store, cohort_id) == ["new"]  # the superseded run wrote nothing
    assert [run.version for run in store.calculation_history(cohort_id)] == [fast]


def test_publishing_the_same_version_twice_keeps_the_first(
    store: CohortStore, cohort_id: int, clock: FakeClock
) -> None:
    version = store.request_calculation(cohort_id)
    assert _publish(store, clock, cohort_id, version, ["a"]).published is True
    assert _publish(store, clock, cohort_id, version, ["b"]).published is False
    assert store.members(cohort_id) == ["a"]
    assert stored_person_ids(store, cohort_id) == ["a"]


def test_publishing_a_version_that_was_never_requested_is_refused(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    with pytest.raises(VersionError):
        _publish(store, clock, cohort_id, 1, ["a"])
    store.request_calculation(cohort_id)
    with pytest.raises(VersionError):
        _publish(store, clock, cohort_id, 2, ["a"])
    assert store.get_cohort(project.id, cohort_id).version is None
    assert rows_of(store, memberships, cohort_id=cohort_id) == []


def test_publish_unknown_cohort_is_not_found(store: CohortStore, clock: FakeClock) -> None:
    with pytest.raises(NotFoundError):
        _publish(store, clock, 999, 1, ["a"])


def test_entered_and_exited_are_counted_against_the_previous_version(
    store: CohortStore, cohort_id: int, clock: FakeClock
) -> None:
    first = store.request_calculation(cohort_id)
    result = _publish(store, clock, cohort_id, first, ["a", "b", "c"])
    assert (result.entered, result.exited, result.previous_version) == (3, 0, None)
    second = store.request_calculation(cohort_id)
    result = _publish(store, clock, cohort_id, second, ["b", "c", "d", "e"])
    assert (result.count, result.entered, result.exited, result.previous_version) == (4, 2, 1, first)
    third = store.request_calculation(cohort_id)
    result = _publish(store, clock, cohort_id, third, [])
    assert (result.count, result.entered, result.exited) == (0, 0, 4)
    newest = store.calculation_history(cohort_id)[0]
    assert (newest.version, newest.count, newest.entered, newest.exited) == (third, 0, 0, 4)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ([], ["a", "b"]),
        (["a", "b"], []),
        (["a", "b", "c"], ["a", "b", "c"]),
        (["a", "b"], ["c", "d", "e"]),
        (["a", "b", "c"], ["b", "c", "d"]),
        (["é", "日本", "😀", "a"], ["日本", "😀x", "e\u0301", "a"]),
        (["", "a"], ["a"]),
        (["a"], ["", "a"]),
        ([""], [""]),
        ([""], []),
        (["line\nbreak", "comma,id", "tab\tid", '"quoted"', "back\\slash"], ["line\nbreak", "comma,id2", "\r\n", ","]),
    ],
    ids=[
        "empty-previous-set", "empty-new-set", "identical", "disjoint", "overlapping", "unicode",
        "empty-string-exits", "empty-string-enters", "only-empty-string", "only-empty-string-exits",
        "newlines-and-commas",
    ],
)
def test_entered_and_exited_are_the_set_differences(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock, old: list[str], new: list[str]
) -> None:
    first = store.request_calculation(cohort_id)
    assert _publish(store, clock, cohort_id, first, old).entered == len(old)
    assert stored_person_ids(store, cohort_id) == sorted(old)
    second = store.request_calculation(cohort_id)
    result = _publish(store, clock, cohort_id, second, new)
    entered, exited = len(set(new) - set(old)), len(set(old) - set(new))
    assert (result.published, result.count, result.entered, result.exited, result.previous_version) == (
        True, len(new), entered, exited, first
    )
    assert store.members(cohort_id) == stored_person_ids(store, cohort_id) == sorted(new)
    assert store.get_cohort(project.id, cohort_id).count == len(new)
    newest = store.calculation_history(cohort_id)[0]
    assert (newest.version, newest.count, newest.entered, newest.exited) == (second, len(new), entered, exited)


def test_the_stored_rows_are_always_exactly_the_published_members(
    store: CohortStore, cohort_id: int, clock: FakeClock
) -> None:
    """No version is kept besides the published one: each publish leaves the rows equal to its members."""
    for ids in (["a", "b"], ["b", "c"], ["c"], [], ["a", "c", "d"]):
        _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ids)
        assert stored_person_ids(store, cohort_id) == store.members(cohort_id) == ids
    assert {column.name for column in memberships.columns} == {"cohort_id", "person_id"}


def test_republishing_the_same_members_neither_reads_nor_writes_the_rows(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored digest of the members equals the run's: nobody entered or left, the version still flips."""
    first = store.request_calculation(cohort_id)
    _publish(store, clock, cohort_id, first, ["c", "a", "b"])

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("unchanged members must not be read or written")

    for name in ("stored_members", "insert_members", "delete_members"):
        monkeypatch.setattr(versions_module, name, must_not_run)
    clock.advance(minutes=5)
    second = store.request_calculation(cohort_id)
    result = _publish(store, clock, cohort_id, second, pl.Series(["b", "a", "c", "a"]))
    assert (result.published, result.count, result.entered, result.exited, result.previous_version) == (
        True, 3, 0, 0, first
    )
    cohort = store.get_cohort(project.id, cohort_id)
    assert (cohort.version, cohort.count, cohort.last_calculation) == (second, 3, clock.now)
    assert store.members(cohort_id) == stored_person_ids(store, cohort_id) == ["a", "b", "c"]
    newest = store.calculation_history(cohort_id)[0]
    assert (newest.version, newest.count, newest.entered, newest.exited) == (second, 3, 0, 0)


def test_a_publish_without_a_stored_digest_diffs_the_rows_and_records_it(
    store: CohortStore, cohort_id: int, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cohorts published before migration 0005 have no digest: their rows are read and diffed, and the digest is
    recorded for the next publish."""
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a", "b"])
    with store.engine.begin() as conn:
        conn.execute(sa.update(cohorts).where(cohorts.c.id == cohort_id).values(members_digest=None))
    reads = []
    real = versions_module.stored_members
    monkeypatch.setattr(versions_module, "stored_members", lambda *args: reads.append(args) or real(*args))
    result = _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a", "b"])
    assert (result.entered, result.exited, len(reads)) == (0, 0, 1)
    result = _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a", "b"])
    assert (result.entered, result.exited, len(reads)) == (0, 0, 1)  # the digest is known again: no read
    result = _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["b", "c"])
    assert (result.entered, result.exited, len(reads)) == (1, 1, 2)
    assert store.members(cohort_id) == stored_person_ids(store, cohort_id) == ["b", "c"]


def test_publish_accepts_a_polars_series(store: CohortStore, cohort_id: int, clock: FakeClock) -> None:
    ids = pl.Series("person_id", ["b", "a", "b"])
    result = _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ids)
    assert result.count == 2
    categorical = pl.Series(["c", "d"], dtype=pl.Categorical)
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), categorical)
    assert store.members(cohort_id) == ["c", "d"]


@pytest.mark.parametrize(
    "bad_ids",
    [["a", None, "b"], ["a", 5], "abc", pl.Series([1, 2]), pl.Series(["a", None]), ["nul\x00byte"]],
    ids=["none", "int", "single-string", "int-series", "null-in-series", "nul-character"],
)
def test_invalid_person_ids_are_refused_before_anything_is_written(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock, bad_ids: object
) -> None:
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["kept"])
    before = store.get_cohort(project.id, cohort_id)
    version = store.request_calculation(cohort_id)
    with pytest.raises(InvalidMembershipError):
        store.publish(cohort_id, version, bad_ids, started_at=clock.now)  # type: ignore[arg-type]
    after = store.get_cohort(project.id, cohort_id)
    assert (after.version, after.count, after.last_calculation) == (
        before.version,
        before.count,
        before.last_calculation,
    )
    assert store.members(cohort_id) == ["kept"]
    assert stored_person_ids(store, cohort_id) == ["kept"]


def test_naive_timestamps_are_refused(store: CohortStore, cohort_id: int, clock: FakeClock) -> None:
    version = store.request_calculation(cohort_id)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.publish(cohort_id, version, ["a"], started_at=clock.now.replace(tzinfo=None))


def test_history_keeps_the_filters_the_run_computed(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a"])
    computed = {"properties": {"type": "OR", "values": []}}
    store.update_cohort(project.id, cohort_id, filters={"properties": {"type": "AND", "values": [EMPTY_FILTERS]}})
    store.publish(cohort_id, store.request_calculation(cohort_id), ["a"], started_at=clock.now, filters=computed)
    newest, oldest = store.calculation_history(cohort_id)
    assert newest.filters == computed
    assert oldest.filters == EMPTY_FILTERS


# --- step 5: failure ------------------------------------------------------------------------------------


def test_a_failed_run_leaves_the_published_version_readable(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a", "b"])
    clock.advance(minutes=20)
    version = store.request_calculation(cohort_id)
    record = store.record_failure(cohort_id, version, "Query exceeded memory limit", "memory_limit")
    assert (record.version, record.count, record.errors_calculating) == (1, 2, 1)
    assert record.last_error_at == clock.now
    assert record.is_calculating is False
    assert store.get_cohort(project.id, cohort_id) == record
    assert store.members(cohort_id) == ["a", "b"]
    failure = store.calculation_history(cohort_id)[0]
    assert (failure.version, failure.error, failure.error_code, failure.failed) == (
        version,
        "Query exceeded memory limit",
        "memory_limit",
        True,
    )
    assert failure.count is None


def test_a_failure_while_a_newer_run_is_pending_keeps_is_calculating(store: CohortStore, cohort_id: int) -> None:
    first = store.request_calculation(cohort_id)
    store.request_calculation(cohort_id)
    record = store.record_failure(cohort_id, first, "boom")
    assert (record.is_calculating, record.errors_calculating) == (True, 1)


def test_consecutive_failures_accumulate_and_a_success_resets_them(
    store: CohortStore, cohort_id: int, clock: FakeClock
) -> None:
    for expected in (1, 2, 3):
        record = store.record_failure(cohort_id, store.request_calculation(cohort_id), "boom", "timeout")
        assert record.errors_calculating == expected
    clock.advance(minutes=1)
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a"])
    assert store.calculation_history(cohort_id)[0].failed is False
    record = store.record_failure(cohort_id, store.request_calculation(cohort_id), "boom")
    assert record.errors_calculating == 1


def test_retries_of_one_run_are_charged_once(store: CohortStore, cohort_id: int) -> None:
    version = store.request_calculation(cohort_id)
    store.record_failure(cohort_id, version, "attempt 1", "capacity")
    record = store.record_failure(cohort_id, version, "attempt 2", "capacity")
    assert record.errors_calculating == 1
    assert [run.error for run in store.calculation_history(cohort_id)] == ["attempt 2", "attempt 1"]


def test_a_failure_of_a_run_older_than_the_published_version_is_not_charged(
    store: CohortStore, cohort_id: int, clock: FakeClock
) -> None:
    old = store.request_calculation(cohort_id)
    new = store.request_calculation(cohort_id)
    _publish(store, clock, cohort_id, new, ["a"])
    record = store.record_failure(cohort_id, old, "late failure")
    assert (record.errors_calculating, record.last_error_at, record.version) == (0, None, new)
    assert store.calculation_history(cohort_id)[0].error == "late failure"


def test_unknown_error_codes_are_stored_as_unknown(store: CohortStore, cohort_id: int) -> None:
    store.record_failure(cohort_id, store.request_calculation(cohort_id), "odd", "not_a_code")
    assert store.calculation_history(cohort_id)[0].error_code == "unknown"


def test_record_failure_for_an_unknown_cohort_is_not_found(store: CohortStore) -> None:
    with pytest.raises(NotFoundError):
        store.record_failure(12345, 1, "boom")


# --- history --------------------------------------------------------------------------------------------


def test_history_is_newest_first_and_limited(store: CohortStore, cohort_id: int, clock: FakeClock) -> None:
    for n in range(4):
        clock.advance(minutes=1)
        version = store.request_calculation(cohort_id)
        if n == 2:
            store.record_failure(cohort_id, version, "boom", started_at=clock.now - timedelta(seconds=2))
        else:
            _publish(store, clock, cohort_id, version, [f"p{n}"])
    history = store.calculation_history(cohort_id)
    assert [run.version for run in history] == [4, 3, 2, 1]
    assert [run.failed for run in history] == [False, True, False, False]
    assert all(run.duration_ms == 2000 for run in history)
    assert [run.version for run in store.calculation_history(cohort_id, limit=2)] == [4, 3]
    assert store.calculation_history(cohort_id + 1000) == []


def test_history_belongs_to_its_cohort_and_project(
    store: CohortStore, project: ProjectRecord, cohort_id: int, clock: FakeClock
) -> None:
    other = store.create_cohort(project.id, name="other")
    _publish(store, clock, cohort_id, store.request_calculation(cohort_id), ["a"])
    _publish(store, clock, other.id, store.request_calculation(other.id), ["b", "c"])
    (run,) = store.calculation_history(cohort_id)
    assert (run.cohort_id, run.project_id, run.count) == (cohort_id, project.id, 1)
