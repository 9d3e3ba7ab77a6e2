"""Periodic scheduling (spec 9.2 step 1: staleness, back-off, error cap) and stuck reset (spec 9.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cohort_pipeline.store import CohortRecord, CohortStore, ProjectRecord

from .conftest import FakeClock, force_cohort_state


def _ids(cohorts: list[CohortRecord]) -> list[int]:
    return [cohort.id for cohort in cohorts]


def _cohort(store: CohortStore, project: ProjectRecord, **state: object) -> int:
    cohort_id = store.create_cohort(project.id, name="c").id
    if state:
        force_cohort_state(store, cohort_id, **state)
    return cohort_id


def test_stale_query_picks_due_dynamic_cohorts_oldest_first(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    now = clock.now
    fresh = _cohort(store, project, last_calculation=now - timedelta(minutes=14))
    due = _cohort(store, project, last_calculation=now - timedelta(minutes=15))
    older = _cohort(store, project, last_calculation=now - timedelta(days=2))
    never = _cohort(store, project)
    _cohort(store, project, is_static=True)
    _cohort(store, project, deleted=True)
    _cohort(store, project, is_calculating=True, last_calculation=now - timedelta(days=3))
    assert fresh not in _ids(store.stale_dynamic_cohorts(now))
    assert _ids(store.stale_dynamic_cohorts(now)) == [never, older, due]
    assert _ids(store.stale_dynamic_cohorts(now, limit=2)) == [never, older]
    assert _ids(store.stale_dynamic_cohorts(now, max_age=timedelta(days=1))) == [never, older]


def test_stale_query_defaults_to_the_store_clock(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    cohort_id = _cohort(store, project, last_calculation=clock.now - timedelta(minutes=1))
    assert store.stale_dynamic_cohorts() == []
    clock.advance(minutes=15)
    assert _ids(store.stale_dynamic_cohorts()) == [cohort_id]


@pytest.mark.parametrize("errors", [0, 1, 3, 20])
def test_back_off_doubles_with_each_error(
    store: CohortStore, project: ProjectRecord, clock: FakeClock, errors: int
) -> None:
    last_error = clock.now
    last_success = last_error - timedelta(days=1)
    cohort_id = _cohort(
        store, project, errors_calculating=errors, last_error_at=last_error, last_calculation=last_success
    )
    wait = timedelta(minutes=30) * 2**errors
    assert store.stale_dynamic_cohorts(last_error + wait - timedelta(seconds=1)) == []
    assert _ids(store.stale_dynamic_cohorts(last_error + wait)) == [cohort_id]


def test_more_than_twenty_errors_stop_periodic_recalculation(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    far_future = clock.now + timedelta(days=365 * 200)
    twenty = _cohort(store, project, errors_calculating=20, last_error_at=clock.now)
    _cohort(store, project, errors_calculating=21, last_error_at=clock.now)
    _cohort(store, project, errors_calculating=21, last_error_at=None)
    assert _ids(store.stale_dynamic_cohorts(far_future)) == [twenty]
    assert store.stale_dynamic_cohorts(far_future, max_errors=19) == []
    assert len(store.stale_dynamic_cohorts(far_future, max_errors=100)) == 3


def test_an_error_count_without_error_time_is_not_held_back(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    cohort_id = _cohort(store, project, errors_calculating=5, last_error_at=None)
    assert _ids(store.stale_dynamic_cohorts(clock.now)) == [cohort_id]


def test_failures_recorded_by_the_state_machine_drive_the_back_off(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    cohort_id = _cohort(store, project)
    store.record_failure(cohort_id, store.request_calculation(cohort_id), "boom", "timeout")
    store.record_failure(cohort_id, store.request_calculation(cohort_id), "boom", "timeout")
    assert store.stale_dynamic_cohorts(clock.now + timedelta(minutes=119)) == []
    assert _ids(store.stale_dynamic_cohorts(clock.now + timedelta(minutes=120))) == [cohort_id]


def test_stale_query_can_be_restricted_to_a_project(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    other = store.create_project("other")
    mine = _cohort(store, project)
    _cohort(store, other)
    assert _ids(store.stale_dynamic_cohorts(clock.now, project_id=project.id)) == [mine]


def test_stuck_calculations_are_reset_and_charged(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    stuck = _cohort(store, project)
    store.request_calculation(stuck)
    clock.advance(minutes=30)
    recent = _cohort(store, project)
    store.request_calculation(recent)
    idle = _cohort(store, project)
    deleted = _cohort(store, project)
    store.request_calculation(deleted)
    store.soft_delete(project.id, deleted)

    assert store.reset_stuck() == []  # 30 minutes is not stuck yet
    clock.advance(minutes=30)
    assert store.reset_stuck() == [stuck]
    record = store.get_cohort(project.id, stuck)
    assert (record.is_calculating, record.errors_calculating, record.last_error_at) == (False, 1, clock.now)
    assert store.get_cohort(project.id, recent).is_calculating is True
    assert store.get_cohort(project.id, idle).errors_calculating == 0
    assert store.reset_stuck() == []  # already reset
    clock.advance(hours=1)
    assert store.reset_stuck(older_than=timedelta(hours=2)) == []
    assert store.reset_stuck(now=clock.now) == [recent]


def test_reset_stuck_is_oldest_first_and_limited(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    ids = []
    for _ in range(4):
        cohort_id = _cohort(store, project)
        store.request_calculation(cohort_id)
        ids.append(cohort_id)
        clock.advance(minutes=1)
    clock.advance(hours=2)
    assert store.reset_stuck(limit=3) == ids[:3]
    assert store.reset_stuck(limit=3) == ids[3:]


def test_stuck_time_counts_from_the_request_not_from_the_last_success(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    """Divergence from PostHog (which uses last_calculation): a cohort last calculated days ago and requested
    a minute ago is running, not stuck."""
    cohort_id = _cohort(store, project)
    store.publish(cohort_id, store.request_calculation(cohort_id), ["a"], started_at=clock.now)
    clock.advance(days=3)
    version = store.request_calculation(cohort_id)
    clock.advance(minutes=1)
    assert store.reset_stuck() == []
    clock.advance(hours=1)
    assert store.reset_stuck() == [cohort_id]
    # a run that was reset can still land: publishing is independent of the flag
    assert store.publish(cohort_id, version, ["b"], started_at=clock.now).published is True
    record = store.get_cohort(project.id, cohort_id)
    assert (record.version, record.errors_calculating, record.is_calculating) == (version, 0, False)


def test_a_never_calculated_cohort_can_be_stuck(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    cohort_id = _cohort(store, project, is_calculating=True)  # flagged without a recorded request time
    clock.advance(hours=1)
    assert store.reset_stuck() == [cohort_id]
