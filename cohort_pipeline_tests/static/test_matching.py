"""Matching submitted ids to persons (spec 7.3) and the dedupe/accounting rules (spec 7.4).

The project below is small enough to work every expectation out by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import datetime, timezone

import polars as pl
import pytest

from cohort_pipeline.static.matching import UNMATCHED_SAMPLE_CAP, StaticMatch, match_ids, match_person_ids

CREATED = datetime(2024, 6, 15, 12, tzinfo=timezone.utc)

# person id -> (properties, distinct ids)
PROJECT: dict[str, tuple[dict[str, object] | None, list[str]]] = {
    "p1": ({"email": "alice@example.com", "name": "Alice"}, ["alice", "alice-phone", "alice-laptop"]),
    "p2": ({"email": "Bob@Example.com"}, ["bob", "ALICE"]),
    "p3": ({"email": "shared@example.com"}, ["carol"]),
    "p4": ({"email": "shared@example.com"}, ["dave"]),
    "p5": ({}, ["eve"]),
    "p6": ({"email": None}, ["frank"]),
    "p7": ({"Email": "cap@example.com"}, ["grace"]),
    "p8": ({"email": " spaced@example.com "}, []),
    "p9": (None, ["heidi"]),
}
#: A distinct id whose person was deleted: its row outlived the person.
ORPHAN_DISTINCT_IDS = {"ghost": "p-deleted"}


def persons_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(PROJECT),
            "created_at": [CREATED] * len(PROJECT),
            "properties": [None if props is None else json.dumps(props) for props, _ in PROJECT.values()],
        },
        schema={"id": pl.String, "created_at": pl.Datetime("us", "UTC"), "properties": pl.String},
    )


def distinct_ids_frame() -> pl.DataFrame:
    pairs = [(d, pid) for pid, (_, dids) in PROJECT.items() for d in dids] + list(ORPHAN_DISTINCT_IDS.items())
    return pl.DataFrame(pairs, schema={"distinct_id": pl.String, "person_id": pl.String}, orient="row")


def expected(person_ids: list[str], submitted: int, unmatched: list[str]) -> StaticMatch:
    """An expected result: unmatched ids listed in submission order (all of them, below the sample cap)."""
    return StaticMatch(
        person_ids=person_ids,
        ids_submitted=submitted,
        persons_matched=len(person_ids),
        unmatched_count=len(unmatched),
        unmatched_sample=unmatched,
    )


CASES = [
    # --- distinct ids --------------------------------------------------------------------------------------
    ("distinct_ids_of_one_person_collapse", "distinct_id", ["alice", "alice-phone", "alice-laptop"], expected(["p1"], 3, [])),
    ("distinct_id_case_sensitive", "distinct_id", ["Alice", "ALICE", "alice"], expected(["p1", "p2"], 3, ["Alice"])),
    ("distinct_id_duplicates_deduped", "distinct_id", ["bob", "bob", "alice", "bob"], expected(["p1", "p2"], 2, [])),
    ("distinct_id_unknown_dropped_counted", "distinct_id", ["nobody", "bob", "nobody2"],
     expected(["p2"], 3, ["nobody", "nobody2"])),
    ("distinct_id_of_deleted_person", "distinct_id", ["ghost", "eve"], expected(["p5"], 2, ["ghost"])),
    ("distinct_id_is_not_an_email", "distinct_id", ["alice@example.com"], expected([], 1, ["alice@example.com"])),
    ("distinct_id_is_not_a_person_id", "distinct_id", ["p1"], expected([], 1, ["p1"])),
    ("distinct_id_no_trimming_here", "distinct_id", [" bob"], expected([], 1, [" bob"])),
    ("members_sorted", "distinct_id", ["heidi", "carol", "alice"], expected(["p1", "p3", "p9"], 3, [])),
    # --- person ids ------------------------------------------------------------------------------------------
    ("person_ids", "person_id", ["p3", "p1", "zz", "p3"], expected(["p1", "p3"], 3, ["zz"])),
    ("person_id_exact_case", "person_id", ["P1"], expected([], 1, ["P1"])),
    ("person_id_is_not_a_distinct_id", "person_id", ["alice"], expected([], 1, ["alice"])),
    ("person_id_of_deleted_person", "person_id", ["p-deleted"], expected([], 1, ["p-deleted"])),
    # --- emails ------------------------------------------------------------------------------------------------
    ("email_exact", "email", ["alice@example.com"], expected(["p1"], 1, [])),
    ("email_case_sensitive", "email", ["bob@example.com", "Bob@Example.com", "BOB@EXAMPLE.COM"],
     expected(["p2"], 3, ["bob@example.com", "BOB@EXAMPLE.COM"])),
    ("email_shared_by_two_persons", "email", ["shared@example.com"], expected(["p3", "p4"], 1, [])),
    ("email_property_key_case_sensitive", "email", ["cap@example.com"], expected([], 1, ["cap@example.com"])),
    ("email_value_not_trimmed", "email", ["spaced@example.com", " spaced@example.com "],
     expected(["p8"], 2, ["spaced@example.com"])),
    ("email_is_not_a_distinct_id", "email", ["alice"], expected([], 1, ["alice"])),
    ("email_duplicates_deduped", "email", ["alice@example.com"] * 3, expected(["p1"], 1, [])),
    # --- nothing submitted -----------------------------------------------------------------------------------
    ("no_ids", "distinct_id", [], expected([], 0, [])),
    ("no_emails", "email", [], expected([], 0, [])),
]

FRAME_KINDS: dict[str, Callable[[pl.DataFrame], pl.DataFrame | pl.LazyFrame]] = {
    "eager": lambda frame: frame,
    "lazy": lambda frame: frame.lazy(),
}


@pytest.mark.parametrize("frame_kind", list(FRAME_KINDS))
@pytest.mark.parametrize(("id_type", "ids", "result"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_match_ids(id_type: str, ids: list[str], result: StaticMatch, frame_kind: str) -> None:
    wrap = FRAME_KINDS[frame_kind]
    assert match_ids(id_type, ids, wrap(persons_frame()), wrap(distinct_ids_frame())) == result  # type: ignore[arg-type]


def test_unmatched_sample_is_capped_and_in_submission_order() -> None:
    """The count covers every unique unknown id; the sample the first 50 of them, first occurrence first."""
    unknown = [f"unknown-{i:03d}" for i in range(120)]
    submitted = ["alice", *unknown[:10], "unknown-000", "bob", *reversed(unknown[10:]), "unknown-005"]
    result = match_ids("distinct_id", submitted, persons_frame(), distinct_ids_frame())
    assert UNMATCHED_SAMPLE_CAP == 50
    assert result.ids_submitted == 122
    assert result.unmatched_count == 120
    assert result.unmatched_sample == unknown[:10] + list(reversed(unknown[10:]))[:40]
    assert result.person_ids == ["p1", "p2"]


def test_generator_of_ids_is_accepted() -> None:
    result = match_ids("person_id", (pid for pid in ["p2", "p1"]), persons_frame())
    assert result.person_ids == ["p1", "p2"]


def test_null_ids_are_ignored() -> None:
    result = match_ids("person_id", ["p1", None], persons_frame())  # type: ignore[list-item]
    assert result == expected(["p1"], 1, [])


def test_extra_and_missing_person_columns() -> None:
    """Only the columns a lookup needs are read: a person-id match needs no properties column."""
    persons = pl.DataFrame({"id": ["a", "b"], "team": [1, 1]})
    assert match_ids("person_id", ["b"], persons).person_ids == ["b"]


def test_empty_project() -> None:
    persons = persons_frame().clear()
    distinct_ids = distinct_ids_frame().clear()
    for id_type in ("distinct_id", "person_id", "email"):
        assert match_ids(id_type, ["x"], persons, distinct_ids) == expected([], 1, ["x"])  # type: ignore[arg-type]


def test_unparseable_properties_match_no_email() -> None:
    persons = pl.DataFrame({"id": ["a", "b"], "properties": ["not json", '{"email": "b@x.com"}']})
    assert match_ids("email", ["b@x.com", "not json"], persons) == expected(["b"], 2, ["not json"])


def test_match_person_ids_for_create_static_person_ids() -> None:
    result = match_person_ids(["p2", "no-such-person", "p2", "p1"], persons_frame())
    assert result == expected(["p1", "p2"], 3, ["no-such-person"])


def test_match_person_ids_lazy_and_empty() -> None:
    assert match_person_ids([], persons_frame().lazy()) == expected([], 0, [])


def test_unknown_id_type() -> None:
    with pytest.raises(ValueError, match="unknown id_type 'uuid'"):
        match_ids("uuid", ["x"], persons_frame(), distinct_ids_frame())  # type: ignore[arg-type]


def test_distinct_ids_need_the_distinct_id_frame() -> None:
    with pytest.raises(ValueError, match="person_distinct_ids"):
        match_ids("distinct_id", ["alice"], persons_frame())


def test_result_is_frozen() -> None:
    result = match_person_ids(["p1"], persons_frame())
    with pytest.raises(FrozenInstanceError):
        result.persons_matched = 2  # type: ignore[misc]


def test_many_ids() -> None:
    """A 300 000-id upload against 200 000 persons: counts are exact (vectorised path, no per-row work)."""
    n_persons = 200_000
    persons = pl.select(id=pl.format("p{}", pl.int_range(n_persons)))
    distinct_ids = pl.select(
        distinct_id=pl.format("d{}", pl.int_range(2 * n_persons)),
        person_id=pl.format("p{}", pl.int_range(2 * n_persons) % n_persons),
    )
    # d0..d299999: d0..d199999 and d200000..d299999 are the two distinct ids of p0..p199999 / p0..p99999.
    submitted = pl.select(pl.format("d{}", pl.int_range(300_000))).to_series().to_list() + ["missing"] * 3
    result = match_ids("distinct_id", submitted, persons, distinct_ids)
    assert result.ids_submitted == 300_001
    assert result.persons_matched == n_persons
    assert result.unmatched_count == 1
    assert result.unmatched_sample == ["missing"]
    assert result.person_ids[:2] == ["p0", "p1"]
