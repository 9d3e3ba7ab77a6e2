"""Membership readers and static cohorts (spec 6.1 reference semantics, 7.4-7.5 idempotence and counts)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import polars as pl
import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.store import CohortStore, InvalidMembershipError, NotFoundError, ProjectRecord
from cohort_pipeline.store import members as members_module
from cohort_pipeline.store.person_ids import person_id_series

from .conftest import FakeClock


def _dynamic(store: CohortStore, project: ProjectRecord, clock: FakeClock, ids: list[str]) -> int:
    cohort = store.create_cohort(project.id, name="dynamic")
    store.publish(cohort.id, store.request_calculation(cohort.id), ids, started_at=clock.now)
    return cohort.id


def test_adding_static_members_is_idempotent_and_refreshes_count(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    cohort = store.create_cohort(project.id, name="VIPs", is_static=True)
    assert store.get_cohort(project.id, cohort.id).count is None
    assert store.add_static_members(cohort.id, ["b", "a", "b"]) == 2
    clock.advance(minutes=1)
    assert store.add_static_members(cohort.id, ["b", "c"]) == 1
    assert store.add_static_members(cohort.id, ["a", "b", "c"]) == 0  # re-uploading the same file adds nothing
    record = store.get_cohort(project.id, cohort.id)
    assert (record.count, record.last_calculation, record.errors_calculating, record.is_calculating) == (
        3,
        clock.now,
        0,
        False,
    )
    assert store.static_members(cohort.id) == ["a", "b", "c"]
    assert store.members(cohort.id) == ["a", "b", "c"]


def test_adding_or_removing_on_a_dynamic_cohort_is_refused(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, name="dynamic")
    with pytest.raises(CohortValidationError, match="Can only add users to static cohorts"):
        store.add_static_members(cohort.id, ["a"])
    with pytest.raises(CohortValidationError, match="Can only remove users from static cohorts"):
        store.remove_static_member(cohort.id, "a")
    assert store.static_members(cohort.id) == []


def test_removing_a_static_member_is_idempotent_and_refreshes_count(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, is_static=True)
    store.add_static_members(cohort.id, ["a", "b"])
    assert store.remove_static_member(cohort.id, "a") is True
    assert store.remove_static_member(cohort.id, "a") is False
    assert store.remove_static_member(cohort.id, "never-there") is False
    assert store.get_cohort(project.id, cohort.id).count == 1
    assert store.static_members(cohort.id) == ["b"]
    with pytest.raises(InvalidMembershipError):
        store.remove_static_member(cohort.id, None)  # type: ignore[arg-type]


def test_static_writes_on_unknown_cohorts_are_not_found(store: CohortStore) -> None:
    with pytest.raises(NotFoundError):
        store.add_static_members(404, ["a"])
    with pytest.raises(NotFoundError):
        store.remove_static_member(404, "a")
    with pytest.raises(NotFoundError):
        store.static_members(404)
    with pytest.raises(NotFoundError):
        store.members(404)


def test_invalid_static_ids_add_nothing(store: CohortStore, project: ProjectRecord) -> None:
    cohort = store.create_cohort(project.id, is_static=True)
    store.add_static_members(cohort.id, ["a"])
    with pytest.raises(InvalidMembershipError):
        store.add_static_members(cohort.id, ["b", None])  # type: ignore[list-item]
    assert store.static_members(cohort.id) == ["a"]
    assert store.get_cohort(project.id, cohort.id).count == 1


def test_bulk_static_insert_path_is_idempotent(
    store: CohortStore, project: ProjectRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL stages large static inserts through COPY; force that path with a tiny threshold."""
    monkeypatch.setattr(members_module, "STATIC_COPY_THRESHOLD", 2)
    cohort = store.create_cohort(project.id, is_static=True)
    assert store.add_static_members(cohort.id, [f"p{i:03d}" for i in range(100)]) == 100
    assert store.add_static_members(cohort.id, [f"p{i:03d}" for i in range(50, 150)]) == 50
    assert store.add_static_members(cohort.id, [f"p{i:03d}" for i in range(50, 150)]) == 0
    assert store.get_cohort(project.id, cohort.id).count == 150


def test_a_static_cohort_from_criteria_is_published_as_static_members(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    cohort = store.create_cohort(project.id, is_static=True, filters={"properties": {"type": "AND", "values": []}})
    version = store.request_calculation(cohort.id)
    result = store.publish(cohort.id, version, ["b", "a", "a"], started_at=clock.now - timedelta(seconds=1))
    assert (result.published, result.count, result.entered, result.exited) == (True, 2, 2, 0)
    record = store.get_cohort(project.id, cohort.id)
    assert (record.version, record.count, record.is_calculating) == (version, 2, False)
    assert store.static_members(cohort.id) == ["a", "b"]
    assert store.add_static_members(cohort.id, ["a", "c"]) == 1  # later uploads append
    assert store.get_cohort(project.id, cohort.id).count == 3
    assert store.publish(cohort.id, version, ["z"], started_at=clock.now).published is False
    assert store.static_members(cohort.id) == ["a", "b", "c"]


def test_members_are_sorted(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    ids = ["b", "B", "a", "é", "10", "9", ""]
    cohort_id = _dynamic(store, project, clock, ids)
    assert store.members(cohort_id) == sorted(ids)
    assert store.memberships_frame([cohort_id])["person_id"].to_list() == sorted(ids)


AWKWARD_IDS = [
    'quote"d', "back\\slash", "tab\tnew\nline", "\x01ctrl", "é", "日本", "😀", " ", "", "\\u0041", "[]", "a,b", "\r\n",
    "\\", "\\n", "\x08\x0b\x0c", "\x7f", "\ud7ff\ue000\uffff", "x" * 1000,
]
"""Ids every write, delete and read path must round-trip exactly: escapes, control characters, separators,
non-ASCII, astral, the empty string, a long one."""


@pytest.mark.parametrize("json_each", [True, False], ids=["json_each", "executemany"])
def test_every_write_path_stores_ids_exactly(
    store: CohortStore, project: ProjectRecord, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, json_each: bool
) -> None:
    """SQLite writes and deletes through ``json_each`` (or ``executemany`` before 3.38); PostgreSQL inserts
    through COPY and deletes with an array. Chunks of 3 make every path span several statements. The second
    publish reads the stored awkward ids back (NUL-separated on SQLite, JSON on PostgreSQL) to diff them."""
    monkeypatch.setattr(members_module, "_sqlite_has_json_each", lambda _conn: json_each)
    real_chunks = members_module.chunks
    monkeypatch.setattr(members_module, "chunks", lambda ids, size=3: real_chunks(ids, 3))
    cohort_id = _dynamic(store, project, clock, AWKWARD_IDS)
    assert store.members(cohort_id) == sorted(AWKWARD_IDS)
    assert store.get_cohort(project.id, cohort_id).count == len(AWKWARD_IDS)

    staying = AWKWARD_IDS[::2]
    newcomers = [f"{person_id}+" for person_id in AWKWARD_IDS[:7]]
    result = store.publish(cohort_id, store.request_calculation(cohort_id), staying + newcomers, started_at=clock.now)
    assert (result.entered, result.exited) == (len(newcomers), len(AWKWARD_IDS) - len(staying))
    assert store.members(cohort_id) == sorted(staying + newcomers)
    result = store.publish(cohort_id, store.request_calculation(cohort_id), staying + newcomers, started_at=clock.now)
    assert (result.entered, result.exited, result.count) == (0, 0, len(staying) + len(newcomers))


def test_stored_members_reads_every_id_back(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    """The bulk read of a cohort's stored members, on its own: nobody, one empty-string id, awkward ids."""
    for ids in ([], [""], ["", "a"], AWKWARD_IDS):
        cohort_id = _dynamic(store, project, clock, ids)
        with store.engine.connect() as conn:
            read = members_module.stored_members(conn, cohort_id)
        assert read.dtype == pl.String
        assert sorted(read.to_list()) == sorted(ids)


@pytest.mark.parametrize("page_rows", [1, 2, 3])
def test_stored_members_reads_in_pages_without_losing_or_repeating_an_id(
    store: CohortStore, project: ProjectRecord, clock: FakeClock, page_rows: int
) -> None:
    """Large cohorts are read a page at a time along the primary key (one text value per page stays far below
    the databases' 1 GB limit on a value); page boundaries fall on the empty-string id and on awkward ids."""
    for ids in (["", "a"], ["", "a", "b"], AWKWARD_IDS):
        cohort_id = _dynamic(store, project, clock, ids)
        with store.engine.connect() as conn:
            read = members_module.stored_members(conn, cohort_id, page_rows=page_rows)
        assert sorted(read.to_list()) == sorted(ids)
        assert read.n_unique() == len(read)


@pytest.mark.parametrize(
    "ids",
    [["a", "b", "c"], ["c", "a", "b", "a"], ["a", "a", "b"], ["b", "a"], ["a"], []],
    ids=["sorted", "unsorted-with-repeats", "sorted-with-repeats", "descending", "one", "none"],
)
def test_publish_stores_each_person_once_whatever_the_order(
    store: CohortStore, project: ProjectRecord, clock: FakeClock, ids: list[str]
) -> None:
    """Sorted distinct ids (the engine's output) skip the hash-and-sort; anything else is deduplicated first."""
    cohort_id = _dynamic(store, project, clock, [])
    result = store.publish(cohort_id, store.request_calculation(cohort_id), pl.Series(ids, dtype=pl.String),
                           started_at=clock.now)
    assert result.count == len(set(ids))
    assert store.members(cohort_id) == sorted(set(ids))


def test_memberships_frame_follows_the_reference_rules(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    dynamic = _dynamic(store, project, clock, ["d1", "d2"])
    never = store.create_cohort(project.id, name="never calculated").id
    static = store.create_cohort(project.id, is_static=True).id
    store.add_static_members(static, ["s1"])
    deleted_dynamic = _dynamic(store, project, clock, ["x"])
    store.soft_delete(project.id, deleted_dynamic)
    deleted_static = store.create_cohort(project.id, is_static=True).id
    store.add_static_members(deleted_static, ["y"])
    store.soft_delete(project.id, deleted_static)

    frame = store.memberships_frame([dynamic, never, static, deleted_dynamic, deleted_static, 9999])
    assert frame.schema == pl.Schema({"cohort_id": pl.Int64, "person_id": pl.String})
    assert frame.rows() == [(dynamic, "d1"), (dynamic, "d2"), (static, "s1"), (deleted_static, "y")]
    # a cohort's own member list is still readable after a soft delete (for a restore)
    assert store.members(deleted_dynamic) == ["x"]


def test_static_memberships_frame_holds_only_static_cohorts(
    store: CohortStore, project: ProjectRecord, clock: FakeClock
) -> None:
    dynamic = _dynamic(store, project, clock, ["d1"])
    static = store.create_cohort(project.id, is_static=True).id
    store.add_static_members(static, ["s2", "s1"])
    frame = store.static_memberships_frame([dynamic, static])
    assert frame.rows() == [(static, "s1"), (static, "s2")]
    assert store.static_memberships_frame([]).schema == pl.Schema({"cohort_id": pl.Int64, "person_id": pl.String})


def test_frames_can_be_restricted_to_one_project(store: CohortStore, project: ProjectRecord, clock: FakeClock) -> None:
    other_project = store.create_project("Other")
    mine = _dynamic(store, project, clock, ["m"])
    theirs = _dynamic(store, other_project, clock, ["t"])
    static_theirs = store.create_cohort(other_project.id, is_static=True).id
    store.add_static_members(static_theirs, ["st"])
    ids = [mine, theirs, static_theirs]
    assert store.memberships_frame(ids, project_id=project.id).rows() == [(mine, "m")]
    assert store.static_memberships_frame(ids, project_id=project.id).is_empty()
    assert len(store.memberships_frame(ids)) == 3


# --- the digest of a member set ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [(["ab", "c"], ["a", "bc"]), ([""], []), (["a", "b"], ["a", "b", "c"]), (["a"], ["a", ""]), (["é"], ["e\u0301"])],
    ids=["split-differently", "empty-id-or-nothing", "one-more-id", "extra-empty-id", "unicode-forms"],
)
def test_the_digests_of_different_member_sets_differ(first: list[str], second: list[str]) -> None:
    digest = members_module.members_digest
    assert digest(person_id_series(first)) != digest(person_id_series(second))


def test_the_digest_is_that_of_the_set_whatever_the_order_and_the_paging(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"p{i:03d}" for i in range(11)]
    expected = hashlib.sha256("".join(f"{i}\x00" for i in sorted(ids)).encode()).hexdigest()
    assert members_module.members_digest(person_id_series(list(reversed(ids)) + ids[:3])) == expected
    monkeypatch.setattr(members_module, "READ_PAGE_ROWS", 4)  # pages of 4, 4 and 3 ids
    assert members_module.members_digest(person_id_series(ids)) == expected
