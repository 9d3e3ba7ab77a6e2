"""All-or-nothing writes and concurrent callers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cohort_pipeline.store import CohortStore, ProjectRecord, PublishResult
from cohort_pipeline.store import members as members_module
from cohort_pipeline.store import versions as versions_module
from cohort_pipeline.store.schema import calculation_history, static_members

from .conftest import FakeClock, rows_of, stored_person_ids


class Boom(RuntimeError):
    pass


@pytest.fixture
def published(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> int:
    """A dynamic cohort with version 1 = [a, b] published."""
    cohort = store.create_cohort(project.id, name="c")
    store.publish(cohort.id, store.request_calculation(cohort.id), PUBLISHED, started_at=clock.now)
    return cohort.id


PUBLISHED = ["a", "b"]


def _state(store: CohortStore, project: ProjectRecord, cohort_id: int) -> tuple[Any, ...]:
    c = store.get_cohort(project.id, cohort_id)
    return (c.version, c.count, c.last_calculation, c.errors_calculating, c.last_error_at, store.members(cohort_id))


def _fail_on_third_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Membership writes go in chunks of 2 ids; the third chunk raises after the first two reached the database."""
    real_chunks = members_module.chunks

    def failing_chunks(ids: Any, size: int = 2) -> Iterator[list[str]]:
        for n, chunk in enumerate(real_chunks(ids, 2)):
            if n == 2:
                raise Boom("disk full")
            yield chunk

    monkeypatch.setattr(members_module, "chunks", failing_chunks)


def _assert_untouched(store: CohortStore, project: ProjectRecord, cohort_id: int, before: tuple[Any, ...]) -> None:
    assert _state(store, project, cohort_id) == before
    assert stored_person_ids(store, cohort_id) == before[-1]
    assert len(store.calculation_history(cohort_id)) == 1


def test_a_publish_failing_half_way_through_the_inserts_leaves_nothing(
    store: CohortStore, project: ProjectRecord, published: int, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on_third_chunk(monkeypatch)
    before = _state(store, project, published)
    version = store.request_calculation(published)
    with pytest.raises(Boom):  # 10 persons enter: chunks 1 and 2 are inserted, chunk 3 fails
        store.publish(published, version, [f"p{i}" for i in range(10)], started_at=clock.now)
    _assert_untouched(store, project, published, before)


def test_a_publish_failing_half_way_through_the_deletes_leaves_every_member(
    store: CohortStore, project: ProjectRecord, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = store.create_cohort(project.id, name="big")
    members = [f"p{i}" for i in range(10)]
    store.publish(cohort.id, store.request_calculation(cohort.id), members, started_at=clock.now)
    _fail_on_third_chunk(monkeypatch)
    before = _state(store, project, cohort.id)
    version = store.request_calculation(cohort.id)
    with pytest.raises(Boom):  # everybody exits: chunks 1 and 2 are deleted, chunk 3 fails
        store.publish(cohort.id, version, [], started_at=clock.now)
    _assert_untouched(store, project, cohort.id, before)
    assert before[-1] == members


@pytest.mark.parametrize("step", ["insert_members", "delete_members", "insert_history"])
def test_a_publish_failing_after_a_step_rolls_the_step_back(
    store: CohortStore,
    project: ProjectRecord,
    published: int,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    """Each step of the publish transaction really runs, then raises: nothing of it may remain."""
    real = getattr(versions_module, step)

    def run_then_fail(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise Boom(f"{step} failed")

    monkeypatch.setattr(versions_module, step, run_then_fail)
    before = _state(store, project, published)
    version = store.request_calculation(published)
    clock.advance(minutes=1)
    with pytest.raises(Boom):  # "a" exits, "x" and "y" enter
        store.publish(published, version, ["b", "x", "y"], started_at=clock.now)
    _assert_untouched(store, project, published, before)
    assert store.get_cohort(project.id, published).is_calculating is True  # the run still counts as in flight
    monkeypatch.undo()
    result = store.publish(published, version, ["b", "x", "y"], started_at=clock.now)  # a retry works
    assert (result.published, result.entered, result.exited, result.previous_version) == (True, 2, 1, 1)
    assert store.members(published) == stored_person_ids(store, published) == ["b", "x", "y"]


def test_a_publish_failing_in_the_flip_leaves_state_and_rows(
    store: CohortStore, project: ProjectRecord, published: int, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_history(*_args: Any, **_kwargs: Any) -> None:
        raise Boom("history table unavailable")

    monkeypatch.setattr(versions_module, "insert_history", failing_history)
    before = _state(store, project, published)
    version = store.request_calculation(published)
    clock.advance(minutes=1)
    with pytest.raises(Boom):
        store.publish(published, version, ["x", "y", "z"], started_at=clock.now)
    _assert_untouched(store, project, published, before)
    monkeypatch.undo()
    assert store.publish(published, version, ["x"], started_at=clock.now).published is True  # a retry works
    assert store.members(published) == ["x"]


def test_a_failure_report_that_fails_changes_nothing(
    store: CohortStore, project: ProjectRecord, published: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_history(*_args: Any, **_kwargs: Any) -> None:
        raise Boom("no history")

    monkeypatch.setattr(versions_module, "insert_history", failing_history)
    before = _state(store, project, published)
    version = store.request_calculation(published)
    with pytest.raises(Boom):
        store.record_failure(published, version, "boom")
    assert _state(store, project, published) == before
    assert store.get_cohort(project.id, published).is_calculating is True
    assert len(rows_of(store, calculation_history, cohort_id=published)) == 1


def test_a_static_add_that_fails_adds_nobody(
    store: CohortStore, project: ProjectRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = store.create_cohort(project.id, is_static=True)
    store.add_static_members(cohort.id, ["a"])

    def failing_refresh(*_args: Any, **_kwargs: Any) -> None:
        raise Boom("count failed")

    monkeypatch.setattr(members_module.MembersMixin, "_refresh_static_state", staticmethod(failing_refresh))
    with pytest.raises(Boom):
        store.add_static_members(cohort.id, ["b", "c"])
    assert [row.person_id for row in rows_of(store, static_members, cohort_id=cohort.id)] == ["a"]
    assert store.get_cohort(project.id, cohort.id).count == 1


def _run_threads(target: Callable[[int], None], count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_requests_get_distinct_versions(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id)
    got: list[int] = []
    lock = threading.Lock()

    def request(_n: int) -> None:
        for _ in range(10):
            version = store.request_calculation(cohort.id)
            with lock:
                got.append(version)

    assert _run_threads(request, 4) == []
    assert sorted(got) == list(range(1, 41))
    assert store.get_cohort(project.id, cohort.id).pending_version == 40


def test_concurrent_publishes_end_on_the_newest_version(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    """Six runs with overlapping member sets publish at once, in any order: the newest wins with exactly its
    members, and every applied difference was taken against the members stored at that moment."""
    cohort = store.create_cohort(project.id)
    versions = [store.request_calculation(cohort.id) for _ in range(6)]
    results: list[PublishResult] = []
    lock = threading.Lock()

    def members_of(version: int) -> list[str]:
        return [f"p{i:03d}" for i in range(version * 10, version * 10 + 50)]

    def publish(n: int) -> None:
        result = store.publish(cohort.id, versions[n], members_of(versions[n]), started_at=clock.now)
        with lock:
            results.append(result)

    assert _run_threads(publish, len(versions)) == []
    record = store.get_cohort(project.id, cohort.id)
    assert (record.version, record.count, record.is_calculating) == (6, 50, False)
    assert store.members(cohort.id) == stored_person_ids(store, cohort.id) == members_of(6)
    applied = sorted((r for r in results if r.published), key=lambda r: r.version)
    assert applied[-1].version == 6
    assert sum(r.entered for r in applied) - sum(r.exited for r in applied) == 50  # the diffs add up
    for earlier, later in zip(applied, applied[1:], strict=False):
        assert later.previous_version == earlier.version  # each diff was against the version published before
        expected_entered = len(set(members_of(later.version)) - set(members_of(earlier.version)))
        assert later.entered == expected_entered


def test_concurrent_static_adds_count_each_person_once(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, is_static=True)
    added: list[int] = []
    lock = threading.Lock()

    def add(n: int) -> None:
        result = store.add_static_members(cohort.id, [f"p{i}" for i in range(n * 10, n * 10 + 30)])
        with lock:
            added.append(result)

    assert _run_threads(add, 5) == []
    assert sum(added) == 70
    assert store.get_cohort(project.id, cohort.id).count == 70
