"""Quality checks on candidate memberships (issue 4 item 3): each broken candidate fails exactly its check, for
exactly the cohorts concerned, so a run can hold those back and publish the rest.

The project is tiny and worked out by hand: eight persons, three cohorts. Great Expectations is imported once
for the whole test session (the quality package caches one context per process).
"""

from __future__ import annotations

import dataclasses
import inspect

import polars as pl
import pytest

from cohort_pipeline.model.cohort_type import REALTIME_COHORT_MAX_PERSON_COUNT
from cohort_pipeline.quality import CHECKS, MembershipValidation, Severity, validate_membership
from cohort_pipeline.quality import membership as membership_module

KNOWN = pl.Series("id", [f"p{i}" for i in range(1, 9)])
CLEAN_ROWS = [(1, "p1"), (1, "p2"), (2, "p1"), (2, "p3"), (2, "p4"), (3, "p5"), (3, "p6"), (3, "p7")]
ALL_CHECKS = [
    "pairs_unique",
    "cohort_id_not_null",
    "person_id_not_null",
    "members_are_known_persons",
    "count_matches_rows",
    "realtime_within_max_size",
    "size_change_within_threshold",
]


def frame(rows: list[tuple[int | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"cohort_id": pl.Int64, "person_id": pl.String}, orient="row")


CLEAN = frame(CLEAN_ROWS)


def row_counts(candidate: pl.DataFrame) -> dict[int, int]:
    return dict(candidate.drop_nulls("cohort_id").group_by("cohort_id").len().iter_rows())


def validate(candidate: pl.DataFrame, **overrides: object) -> MembershipValidation:
    """Validate with counts that agree with the candidate's rows and unchanged previous counts, so only the
    defect a test introduces can fail."""
    arguments: dict[str, object] = {
        "known_person_ids": KNOWN,
        "expected_counts": row_counts(candidate),
        "previous_counts": row_counts(candidate),
    }
    arguments.update(overrides)
    return validate_membership(candidate, **arguments)  # type: ignore[arg-type]


def failed_checks(validation: MembershipValidation) -> set[str]:
    return {check.name for check in validation.checks if not check.success}


# --- clean ------------------------------------------------------------------------------------------------


def test_clean_candidate_passes_every_check() -> None:
    validation = validate(CLEAN, realtime_cohort_ids={1, 2, 3})
    assert validation.success
    assert [c.name for c in validation.checks] == ALL_CHECKS
    assert all(c.success and c.status == "passed" for c in validation.checks)
    assert validation.failed_cohort_ids == frozenset()
    assert validation.warned_cohort_ids == frozenset()
    assert validation.publishable_cohort_ids == {1, 2, 3}
    assert validation.row_count == 8
    assert validation.failure_message(1) is None
    assert validation.check("members_are_known_persons").description == "Every member is a known person of the project."


def test_severities_are_dagster_severity_names() -> None:
    assert {c.name: c.severity for c in CHECKS} == {
        name: (Severity.WARN if name == "size_change_within_threshold" else Severity.ERROR) for name in ALL_CHECKS
    }
    assert {s.value for s in Severity} == {"ERROR", "WARN"}  # dg.AssetCheckSeverity[severity] works


# --- broken rows ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra_row", "check_name", "cohort_ids", "example", "in_description"),
    [
        pytest.param((2, "p3"), "pairs_unique", {2}, {"cohort_id": 2, "person_id": "p3", "rows": 2},
                     "2 rows in cohort 2, e.g. cohort 2 person 'p3' x2", id="duplicate pair"),
        pytest.param((3, None), "person_id_not_null", {3}, {"row": 8, "cohort_id": 3},
                     "1 row in cohort 3, e.g. row 8 in cohort 3", id="null person_id"),
        pytest.param((1, "ghost"), "members_are_known_persons", {1}, {"cohort_id": 1, "person_id": "ghost"},
                     "1 row in cohort 1, e.g. cohort 1 person 'ghost'", id="unknown person"),
        # a row without a cohort cannot be attributed: every cohort of the run is held back
        pytest.param((None, "p8"), "cohort_id_not_null", {1, 2, 3}, {"row": 8, "person_id": "p8"},
                     "every cohort of this run is held back", id="null cohort_id"),
    ],
)
def test_broken_row_fails_exactly_its_check_for_its_cohorts(
    extra_row: tuple[int | None, str | None],
    check_name: str,
    cohort_ids: set[int],
    example: dict[str, object],
    in_description: str,
) -> None:
    validation = validate(frame([*CLEAN_ROWS, extra_row]))
    assert not validation.success
    assert failed_checks(validation) == {check_name}
    check = validation.check(check_name)
    assert check.status == "failed"
    assert check.cohort_ids == cohort_ids
    assert check.unexpected_count == example.get("rows", 1)
    assert check.examples == (example,)
    assert in_description in check.description
    assert validation.failed_cohort_ids == cohort_ids
    assert validation.publishable_cohort_ids == {1, 2, 3} - cohort_ids
    for cohort_id in cohort_ids:
        assert check_name in (validation.failure_message(cohort_id) or "")


@pytest.mark.parametrize(
    ("rows", "repeated_rows", "cohort_ids"),
    [
        pytest.param(sorted(CLEAN_ROWS), 0, set(), id="sorted, each pair once (the engine's output)"),
        pytest.param(sorted([*CLEAN_ROWS, (2, "p3")]), 2, {2}, id="sorted with a repeated pair"),
        pytest.param(sorted([*CLEAN_ROWS, (3, "p7"), (3, "p7")]), 3, {3}, id="sorted, the last pair three times"),
        pytest.param([(1, "p2"), (1, "p1"), *CLEAN_ROWS[2:]], 0, set(), id="unsorted, each pair once"),
        pytest.param([*CLEAN_ROWS, (1, "p1")], 2, {1}, id="unsorted with a repeated pair"),
    ],
)
def test_repeated_pairs_are_found_in_any_row_order(
    rows: list[tuple[int, str]], repeated_rows: int, cohort_ids: set[int]
) -> None:
    """A candidate in (cohort_id, person_id) order with each pair once is proven unique by comparing neighbours;
    every other candidate is searched for repeats. Either way GX counts the same rows."""
    check = validate(frame(rows)).check("pairs_unique")
    assert check.success is not repeated_rows
    assert check.unexpected_count == repeated_rows
    assert check.cohort_ids == cohort_ids


def test_rows_without_any_id_are_left_to_the_not_null_checks() -> None:
    """As GX's compound-unique expectation did (``ignore_row_if="all_values_are_missing"``), two rows that are
    both entirely null do not count as a repeated pair; a repeated pair with one null id does."""
    validation = validate(frame([*CLEAN_ROWS, (None, None), (None, None)]))
    assert failed_checks(validation) == {"cohort_id_not_null", "person_id_not_null"}
    repeated = validate(frame([*CLEAN_ROWS, (3, None), (3, None)]))
    assert failed_checks(repeated) == {"pairs_unique", "person_id_not_null"}
    assert repeated.check("pairs_unique").unexpected_count == 2


def test_examples_are_capped_and_every_cohort_is_named() -> None:
    ghosts = [(cohort_id, f"ghost-{cohort_id}-{i}") for cohort_id in (1, 3) for i in range(4)]
    validation = validate(frame([*CLEAN_ROWS, *ghosts]))
    check = validation.check("members_are_known_persons")
    assert check.unexpected_count == 8
    assert check.cohort_ids == {1, 3}
    assert len(check.examples) == membership_module.MAX_EXAMPLES
    assert check.description.startswith("members who are not persons of the project: 8 rows in cohorts 1, 3, e.g.")
    assert check.description.endswith("; ....")


def test_several_defects_hold_back_only_their_cohorts() -> None:
    validation = validate(frame([*CLEAN_ROWS, (1, "p2"), (2, "ghost")]))
    assert failed_checks(validation) == {"pairs_unique", "members_are_known_persons"}
    assert validation.failed_cohort_ids == {1, 2}
    assert validation.publishable_cohort_ids == {3}
    assert "pairs_unique" in (validation.failure_message(1) or "")
    assert "members_are_known_persons" in (validation.failure_message(2) or "")
    assert validation.failure_message(3) is None


# --- counts -----------------------------------------------------------------------------------------------


def test_count_mismatch_fails_that_cohort() -> None:
    validation = validate(CLEAN, expected_counts={1: 2, 2: 4, 3: 3})
    assert failed_checks(validation) == {"count_matches_rows"}
    check = validation.check("count_matches_rows")
    assert check.cohort_ids == {2}
    assert check.examples == ({"cohort_id": 2, "rows": 3, "expected_count": 4},)
    assert check.description == "count differs from the number of rows: cohort 2, e.g. cohort 2: 3 rows, count 4."
    assert validation.publishable_cohort_ids == {1, 3}


def test_count_check_sees_cohorts_without_rows_and_rows_without_count() -> None:
    # cohort 4 should have 2 members but lost every row; cohort 3 has rows the run never counted
    validation = validate(CLEAN, expected_counts={1: 2, 2: 3, 4: 2}, previous_counts={1: 2, 2: 3, 3: 3, 4: None})
    check = validation.check("count_matches_rows")
    assert check.cohort_ids == {3, 4}
    assert validation.failed_cohort_ids == {3, 4}
    assert validation.cohort_ids == {1, 2, 3, 4}
    assert "cohort 3: 3 rows but no expected count" in check.description
    assert "cohort 4: 0 rows, count 2" in check.description


def test_count_check_is_skipped_without_expected_counts() -> None:
    validation = validate(frame([*CLEAN_ROWS, (3, "p8")]), expected_counts=None)
    assert validation.success
    assert "count_matches_rows" not in [c.name for c in validation.checks]
    with pytest.raises(KeyError, match="count_matches_rows"):
        validation.check("count_matches_rows")


# --- realtime size (spec 8.3) -----------------------------------------------------------------------------


def test_realtime_cohort_over_max_size_fails() -> None:
    # max lowered to 2: cohort 1 (2 rows) is at the limit, cohort 3 (3 rows) over it, cohort 2 (3 rows) is not
    # realtime; cohort 99 is realtime but not in this run
    validation = validate(CLEAN, realtime_cohort_ids={1, 3, 99}, max_realtime_size=2)
    assert failed_checks(validation) == {"realtime_within_max_size"}
    check = validation.check("realtime_within_max_size")
    assert check.cohort_ids == {3}
    assert check.examples == ({"cohort_id": 3, "rows": 3},)
    assert "maximum of 2 members" in check.description
    assert validation.cohort_ids == {1, 2, 3}
    assert validation.publishable_cohort_ids == {1, 2}


def test_realtime_max_defaults_to_posthog_limit() -> None:
    default = inspect.signature(validate_membership).parameters["max_realtime_size"].default
    assert default == REALTIME_COHORT_MAX_PERSON_COUNT == 20_000_000


# --- size change (WARN) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "warns"),
    [
        pytest.param(1, True, id="+200%"),
        pytest.param(2, False, id="+50% is not above the threshold"),
        pytest.param(6, False, id="-50% is not above the threshold"),
        pytest.param(7, True, id="-57%"),
        pytest.param(0, True, id="published empty, now 3 members"),
        pytest.param(None, False, id="first calculation"),
    ],
)
def test_size_change_warns_above_threshold_without_blocking(previous: int | None, warns: bool) -> None:
    validation = validate(CLEAN, previous_counts={1: 2, 2: 3, 3: previous})  # cohort 3 has 3 rows
    check = validation.check("size_change_within_threshold")
    assert check.severity is Severity.WARN
    assert check.success is not warns
    assert validation.success
    assert validation.failed_cohort_ids == frozenset()
    assert validation.publishable_cohort_ids == {1, 2, 3}
    assert validation.warned_cohort_ids == ({3} if warns else frozenset())
    assert validation.status == ("passed with warnings" if warns else "passed")
    if warns:
        assert check.status == "warned"
        assert check.description.startswith("size changed by more than 50% against the published count: cohort 3")


def test_size_change_threshold_is_configurable() -> None:
    validation = validate(CLEAN, previous_counts={1: 2, 2: 3, 3: 2}, size_change_threshold=0.25)
    assert validation.warned_cohort_ids == {3}
    assert "cohort 3: 2 -> 3 (+50%)" in validation.check("size_change_within_threshold").description


def test_a_cohort_missing_from_previous_counts_is_a_first_calculation() -> None:
    assert validate(CLEAN, previous_counts={}).warned_cohort_ids == frozenset()


# --- empty and input forms --------------------------------------------------------------------------------


def test_empty_candidate() -> None:
    empty = frame([])
    assert validate(empty, expected_counts={}, previous_counts={}).success
    validation = validate(empty, expected_counts={5: 0}, previous_counts={5: None})
    assert validation.success
    assert validation.cohort_ids == {5}
    lost = validate(empty, expected_counts={5: 0}, previous_counts={5: 40})
    assert lost.success and lost.warned_cohort_ids == {5}


@pytest.mark.parametrize(
    "known",
    [
        pytest.param(pl.DataFrame({"id": KNOWN, "properties": ["{}"] * len(KNOWN)}), id="persons table"),
        pytest.param(pl.LazyFrame({"id": KNOWN}), id="lazy persons table"),
        pytest.param(pl.DataFrame({"person_id": [*KNOWN, None]}), id="person_id column with a null"),
        pytest.param(KNOWN.cast(pl.Categorical), id="categorical series"),
    ],
)
def test_known_persons_accepted_forms(known: pl.Series | pl.DataFrame | pl.LazyFrame) -> None:
    validation = validate(frame([*CLEAN_ROWS, (1, "ghost")]), known_person_ids=known)
    assert failed_checks(validation) == {"members_are_known_persons"}
    assert validation.failed_cohort_ids == {1}


def test_extra_candidate_columns_are_ignored_and_cohort_ids_widened() -> None:
    candidate = CLEAN.with_columns(pl.col("cohort_id").cast(pl.Int32), version=pl.lit(7))
    assert validate(candidate).success


@pytest.mark.parametrize(
    ("candidate", "error", "message"),
    [
        (pl.DataFrame({"cohort_id": [1]}), ValueError, "missing person_id"),
        (pl.DataFrame({"cohort_id": ["1"], "person_id": ["p1"]}), TypeError, "cohort_id must be integers"),
        (pl.DataFrame({"cohort_id": [1], "person_id": [1]}), TypeError, "person_id must be strings"),
    ],
)
def test_malformed_candidate_is_refused(candidate: pl.DataFrame, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        validate_membership(candidate, known_person_ids=KNOWN, expected_counts=None, previous_counts={})


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="size_change_threshold"):
        validate(CLEAN, size_change_threshold=-0.1)
    with pytest.raises(ValueError, match="max_realtime_size"):
        validate(CLEAN, max_realtime_size=-1)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="previous_counts must not be negative"):
        validate(CLEAN, previous_counts={3: -1})
    with pytest.raises(ValueError, match="expected_counts must not be negative"):
        validate(CLEAN, expected_counts={3: -3})


def test_known_persons_frame_needs_an_id_column() -> None:
    with pytest.raises(ValueError, match="'id' or 'person_id'"):
        validate(CLEAN, known_person_ids=pl.DataFrame({"a": ["p1"], "b": ["p2"]}))


# --- Dagster metadata -------------------------------------------------------------------------------------


def test_metadata_is_plain_strings_and_numbers() -> None:
    validation = validate(frame([*CLEAN_ROWS, (2, "ghost")]), previous_counts={1: 2, 2: 3, 3: 1})
    metadata = validation.to_metadata()
    assert all(type(v) in (str, int, float) for v in metadata.values()), metadata
    assert metadata["quality/status"] == "failed"
    assert metadata["quality/rows"] == 9
    assert metadata["quality/cohorts"] == 3
    assert metadata["quality/failed_cohorts"] == 1
    assert metadata["quality/failed_cohort_ids"] == "2"
    assert metadata["quality/warned_cohort_ids"] == "3"
    assert metadata["quality/members_are_known_persons"] == "failed"
    assert metadata["quality/members_are_known_persons/unexpected"] == 1
    assert metadata["quality/size_change_within_threshold"] == "warned"
    assert metadata["quality/pairs_unique"] == "passed"
    assert isinstance(metadata["quality/seconds"], float)
    assert "[failed] members_are_known_persons (ERROR)" in str(metadata["quality/summary"])
    check_metadata = validation.check("members_are_known_persons").to_metadata()
    assert check_metadata["cohort_ids"] == "2" and check_metadata["unexpected"] == 1


# --- fail-safe when GX and the attribution disagree -------------------------------------------------------


def _replace_check(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> None:
    checks = tuple(dataclasses.replace(c, **changes) if c.name == name else c for c in CHECKS)
    monkeypatch.setattr(membership_module, "CHECKS", checks)


def test_an_expectation_gx_cannot_evaluate_holds_back_every_cohort(monkeypatch: pytest.MonkeyPatch) -> None:
    _replace_check(
        monkeypatch, "pairs_unique",
        expectation=lambda gxe, _: gxe.ExpectColumnValuesToNotBeNull(column="no_such_column"),
    )
    validation = validate(CLEAN)
    assert failed_checks(validation) == {"pairs_unique"}
    assert validation.failed_cohort_ids == {1, 2, 3}
    assert "GX could not evaluate the check" in validation.check("pairs_unique").description
    assert "every cohort of this run is held back" in validation.check("pairs_unique").description


def test_a_warn_check_gx_cannot_evaluate_flags_every_cohort_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    _replace_check(
        monkeypatch, "size_change_within_threshold",
        expectation=lambda gxe, _: gxe.ExpectColumnValuesToNotBeNull(column="no_such_column"),
    )
    validation = validate(CLEAN)
    assert validation.success
    assert validation.warned_cohort_ids == {1, 2, 3}
    assert "every cohort of this run is flagged" in validation.check("size_change_within_threshold").description


def test_gx_and_attribution_disagreeing_holds_back_every_cohort(monkeypatch: pytest.MonkeyPatch) -> None:
    _replace_check(monkeypatch, "person_id_not_null", offending=lambda _: pl.lit(False))
    validation = validate(frame([*CLEAN_ROWS, (3, None)]))
    check = validation.check("person_id_not_null")
    assert check.unexpected_count == 1
    assert check.cohort_ids == {1, 2, 3}
    assert "GX counted 1 offending entries where the attribution found 0" in check.description
