"""Tests for :mod:`cohort_pipeline.engine.semver`.

Expected values are worked out by hand from spec 4.3 (the semver rows and PostHog's ``parse_semver`` rules) and
the conformance cases 117-126, not printed from the code under test.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from cohort_pipeline.engine.semver import (
    SEMVER_OPERATORS,
    parse_semver,
    semver_bounds,
    semver_predicate,
    semver_sort_key,
    sortable_semver_expr,
)


def members(versions: dict[str, str | None], operator: str, value: Any) -> list[str]:
    frame = pl.DataFrame(
        {"id": list(versions), "version": list(versions.values())}, schema={"id": pl.String, "version": pl.String}
    )
    return frame.filter(semver_predicate(pl.col("version"), operator, value))["id"].to_list()


def keys(values: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"version": values}, schema={"version": pl.String})
    return frame.select(sortable_semver_expr(pl.col("version")))["version"].to_list()


# --------------------------------------------------------------------------------------------------------------------
# Parsing filter values
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", (1, 2, 3)),
        ("1.2", (1, 2, 0)),  # missing patch is 0
        ("1", (1, 0, 0)),  # missing minor and patch are 0
        ("0", (0, 0, 0)),
        ("10.20.30", (10, 20, 30)),
        ("1.2.3-beta.1", (1, 2, 3)),  # everything after the first '-' is pre-release
        ("1.2-rc.1.5", (1, 2, 0)),
        ("1.2.3-", (1, 2, 3)),
        ("1.2.3.4", (1, 2, 3, 4)),  # a fourth part is kept
        ("1.2.3.4.5", (1, 2, 3, 4, 5)),
        ("01.002.3", (1, 2, 3)),
        ("v1.2.3", (1, 2, 3)),
        ("V2", (2, 0, 0)),
        (" 1.2.3 ", (1, 2, 3)),
        ("1.2.3+build.5", (1, 2, 3)),
        (7, (7, 0, 0)),
    ],
)
def test_parse_semver(text: Any, expected: tuple[int, ...]) -> None:
    assert parse_semver(text) == expected


NOT_SEMVER = ["", " ", "abc", "1.x", "1..2", ".1", "1.2.", "-1.2", "1.2.3beta", "1.*", "~1.2.3", "^1.2", "1,2,3"]


@pytest.mark.parametrize("text", [*NOT_SEMVER, None, 1.5, True, ["1.2.3"]])
def test_parse_semver_rejects_non_versions(text: Any) -> None:
    with pytest.raises(ValueError, match="Invalid semver value"):
        parse_semver(text)


# --------------------------------------------------------------------------------------------------------------------
# Ranges (spec 4.3 table)
# --------------------------------------------------------------------------------------------------------------------

BOUNDS = [
    # tilde: patch-level changes; a bare major allows minor changes
    ("semver_tilde", "1.2.3", (1, 2, 3), (1, 3, 0)),
    ("semver_tilde", "1", (1, 0, 0), (2, 0, 0)),
    ("semver_tilde", "1.2", (1, 2, 0), (1, 3, 0)),
    ("semver_tilde", "0.2.3", (0, 2, 3), (0, 3, 0)),
    ("semver_tilde", "1.2.3-beta", (1, 2, 3), (1, 3, 0)),
    ("semver_tilde", "1.2.3.4", (1, 2, 3, 4), (1, 3, 0)),
    # caret: the leftmost non-zero of major, minor, patch may not change
    ("semver_caret", "1.2.3", (1, 2, 3), (2, 0, 0)),
    ("semver_caret", "0.2.3", (0, 2, 3), (0, 3, 0)),
    ("semver_caret", "0.0.3", (0, 0, 3), (0, 0, 4)),
    ("semver_caret", "0.0.0", (0, 0, 0), (0, 0, 1)),
    ("semver_caret", "1", (1, 0, 0), (2, 0, 0)),
    ("semver_caret", "0.2", (0, 2, 0), (0, 3, 0)),
    ("semver_caret", "1.2.3.4", (1, 2, 3, 4), (2, 0, 0)),
    # wildcard: given parts fixed, the starred part free
    ("semver_wildcard", "1.*", (1, 0, 0), (2, 0, 0)),
    ("semver_wildcard", "1.2.*", (1, 2, 0), (1, 3, 0)),
    ("semver_wildcard", "1.2.3.*", (1, 2, 3, 0), (1, 2, 4, 0)),
    ("semver_wildcard", "1.*.*", (1, 0, 0), (2, 0, 0)),  # trailing '.*' are all stripped (conformance 126)
    ("semver_wildcard", "1.2", (1, 2, 0), (1, 3, 0)),
    ("semver_wildcard", "1", (1, 0, 0), (2, 0, 0)),
    ("semver_wildcard", "0.*", (0, 0, 0), (1, 0, 0)),
    ("semver_wildcard", "1.2.3.4.*", (1, 2, 3, 4, 0), (1, 2, 3, 5, 0)),
]


@pytest.mark.parametrize(("operator", "value", "lower", "upper"), BOUNDS)
def test_semver_bounds(operator: str, value: str, lower: tuple[int, ...], upper: tuple[int, ...]) -> None:
    assert semver_bounds(operator, value) == (lower, upper)


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("semver_wildcard", "*"),
        ("semver_wildcard", ".*"),
        ("semver_wildcard", "1.*.3"),
        ("semver_wildcard", "x.*"),
        ("semver_wildcard", 1),
        ("semver_tilde", "abc"),
        ("semver_caret", ""),
        ("semver_gte", "1.2.3"),  # not a range operator
        ("semver_pessimistic", "1.2.3"),
    ],
)
def test_semver_bounds_rejects(operator: str, value: Any) -> None:
    with pytest.raises(ValueError):
        semver_bounds(operator, value)


# --------------------------------------------------------------------------------------------------------------------
# Sortable keys
# --------------------------------------------------------------------------------------------------------------------

#: Strictly increasing groups of equal versions (missing parts count as 0).
ORDERED = [
    ["0", "0.0.0", "0.0.0.0"],
    ["0.0.1"],
    ["0.1", "0.1.0"],
    ["0.1.1"],
    ["0.9.0"],
    ["0.10.0"],
    ["1", "1.0", "1.0.0", "1.0.0.0"],
    ["1.0.1"],
    ["1.2", "1.2.0"],
    ["1.2.3", "1.2.3.0", "v1.2.3", "1.2.3-beta.1", "1.2.3+456", "01.02.03"],
    ["1.2.3.4"],
    ["1.2.3.10"],
    ["1.2.4"],
    ["1.10.0"],
    ["2.0.0"],
    ["9.0.0"],
    ["10.0.0"],
    ["100.0.0"],
    ["20240101.0.0"],
    ["12345678901234567890.0"],  # parts larger than Int64 still order
]


def test_sort_keys_order_versions_and_equate_padded_ones() -> None:
    groups = [keys(group) for group in ORDERED]
    for group in groups:
        assert None not in group and len(set(group)) == 1
    representatives = [group[0] for group in groups]
    assert representatives == sorted(representatives)
    assert len(set(representatives)) == len(representatives)


def test_polars_sorts_by_the_key_in_version_order() -> None:
    shuffled = [group[0] for group in reversed(ORDERED)]
    frame = pl.DataFrame({"version": shuffled}).sort(sortable_semver_expr(pl.col("version")))
    assert frame["version"].to_list() == [group[0] for group in ORDERED]


PLAIN_VERSIONS = [version for group in ORDERED for version in group if version.replace(".", "").isdigit()]


@pytest.mark.parametrize("version", PLAIN_VERSIONS)
def test_column_key_equals_filter_value_key(version: str) -> None:
    assert keys([version]) == [semver_sort_key(version)]
    assert semver_sort_key(parse_semver(version)) == semver_sort_key(version)


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("v1.2.3", "1.2.3"),
        (" 1.2.3 ", "1.2.3"),
        ("1.2.3-beta.4", "1.2.3"),
        ("1.2.3+20130313144700", "1.2.3"),
        ("Build 2.0 (5)", "2.0.0"),  # PostHog's sortableSemver takes the first dotted run anywhere
        ("release-1.2.3", "1.2.3"),
        ("10", "10.0.0"),  # a bare integer is a version, as for filter values
        ("v2-rc1", "2.0.0"),
    ],
)
def test_property_values_are_read_leniently(text: str, same_as: str) -> None:
    assert keys([text]) == [semver_sort_key(same_as)]


@pytest.mark.parametrize(
    "text", [None, "", " ", "abc", "v", "1.x", "x.1", "-", "1" + "0" * 100 + ".0", "\uff11.\uff12.\uff13"]
)
def test_property_values_without_a_version_have_no_key(text: str | None) -> None:
    assert keys([text]) == [None]


# --------------------------------------------------------------------------------------------------------------------
# Predicates
# --------------------------------------------------------------------------------------------------------------------

#: The persons of conformance cases 117-126.
APP_VERSIONS = {
    "user1": "1.0.0",
    "user2": "1.2.3",
    "user3": "1.2.5",
    "user4": "1.3.0",
    "user5": "2.0.0",
    "user6": "10.0.0",
}

CONFORMANCE = [
    ("117", "semver_gte", "1.2.3", ["user2", "user3", "user4", "user5", "user6"]),
    ("120", "semver_eq", "1.2.3", ["user2"]),
    ("123", "semver_tilde", "1.2.3", ["user2", "user3"]),
    ("126", "semver_wildcard", "1.*.*", ["user1", "user2", "user3", "user4"]),
]


@pytest.mark.parametrize(("case", "operator", "value", "expected"), CONFORMANCE)
def test_conformance_cases(case: str, operator: str, value: str, expected: list[str]) -> None:
    assert members(APP_VERSIONS, operator, value) == expected


OPERATORS_ON_APP_VERSIONS = [
    ("semver_neq", "1.2.3", ["user1", "user3", "user4", "user5", "user6"]),
    ("semver_gt", "1.2.3", ["user3", "user4", "user5", "user6"]),
    ("semver_lt", "1.2.3", ["user1"]),
    ("semver_lte", "1.2.3", ["user1", "user2"]),
    ("semver_gt", "9", ["user6"]),  # numeric, not string, order: 10 > 9
    ("semver_lt", "2", ["user1", "user2", "user3", "user4"]),
    ("semver_eq", "1.2.3-beta", ["user2"]),
    ("semver_eq", "1.2.3.0", ["user2"]),
    ("semver_eq", "1", ["user1"]),
    ("semver_caret", "1.2.3", ["user2", "user3", "user4"]),
    ("semver_caret", "1.2.4", ["user3", "user4"]),
    ("semver_tilde", "1", ["user1", "user2", "user3", "user4"]),
    ("semver_tilde", "1.3", ["user4"]),
    ("semver_wildcard", "1.2.*", ["user2", "user3"]),
    ("semver_wildcard", "10.*", ["user6"]),
    ("semver_wildcard", "1.0.0.*", ["user1"]),
]


@pytest.mark.parametrize(("operator", "value", "expected"), OPERATORS_ON_APP_VERSIONS)
def test_every_operator(operator: str, value: str, expected: list[str]) -> None:
    assert members(APP_VERSIONS, operator, value) == expected


ZERO_MAJOR = {"a": "0.0.2", "b": "0.0.3", "c": "0.0.4", "d": "0.1.0", "e": "0.2.3", "f": "0.2.9", "g": "0.3.0"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.2.3", ["e", "f"]),  # ^0.2.3 -> [0.2.3, 0.3.0)
        ("0.0.3", ["b"]),  # ^0.0.3 -> [0.0.3, 0.0.4)
        ("0.1", ["d"]),  # ^0.1 -> [0.1.0, 0.2.0)
    ],
)
def test_caret_on_zero_versions(value: str, expected: list[str]) -> None:
    assert members(ZERO_MAJOR, "semver_caret", value) == expected


FOUR_PARTS = {"p3": "1.2.3", "p30": "1.2.3.0", "p34": "1.2.3.4", "p310": "1.2.3.10", "p4": "1.2.4", "p2": "1.2"}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("semver_gt", "1.2.3", ["p34", "p310", "p4"]),
        ("semver_eq", "1.2.3", ["p3", "p30"]),
        ("semver_lt", "1.2.3.5", ["p3", "p30", "p34", "p2"]),
        ("semver_gte", "1.2.3.4", ["p34", "p310", "p4"]),
        ("semver_eq", "1.2.0", ["p2"]),
        ("semver_wildcard", "1.2.3.*", ["p3", "p30", "p34", "p310"]),
        ("semver_wildcard", "1.2.3.4.*", ["p34"]),
        ("semver_tilde", "1.2.3.4", ["p34", "p310", "p4"]),
    ],
)
def test_four_part_versions(operator: str, value: str, expected: list[str]) -> None:
    assert members(FOUR_PARTS, operator, value) == expected


NOT_VERSIONS = {"missing": None, "empty": "", "text": "abc", "ok": "1.2.3"}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [  # a missing or invalid property never matches, except for semver_neq (spec 4.2)
        ("semver_eq", "1.2.3", ["ok"]),
        ("semver_neq", "1.2.3", ["missing", "empty", "text"]),
        ("semver_neq", "9.9.9", ["missing", "empty", "text", "ok"]),
        ("semver_gt", "0.0.1", ["ok"]),
        ("semver_gte", "0.0.0", ["ok"]),
        ("semver_lt", "9.0.0", ["ok"]),
        ("semver_lte", "9.0.0", ["ok"]),
        ("semver_tilde", "1.2.0", ["ok"]),
        ("semver_caret", "1.0.0", ["ok"]),
        ("semver_wildcard", "1.*", ["ok"]),
    ],
)
def test_missing_and_invalid_properties(operator: str, value: str, expected: list[str]) -> None:
    assert members(NOT_VERSIONS, operator, value) == expected


def test_list_values_are_an_or_and_an_empty_list_matches_everyone() -> None:
    assert members(APP_VERSIONS, "semver_eq", ["1.0.0", "2.0.0"]) == ["user1", "user5"]
    assert members(APP_VERSIONS, "semver_wildcard", ["1.0.*", "10.*"]) == ["user1", "user6"]
    assert members(APP_VERSIONS, "semver_eq", ["1.2.3"]) == ["user2"]
    assert members(APP_VERSIONS, "semver_eq", []) == list(APP_VERSIONS)


def test_predicate_is_never_null_and_keeps_the_column_name() -> None:
    frame = pl.DataFrame({"app_version": [None, "1.2.3", "x"]}, schema={"app_version": pl.String})
    out = frame.select(semver_predicate(pl.col("app_version"), "semver_gt", "1.0.0"))
    assert out.schema == {"app_version": pl.Boolean}
    assert out["app_version"].to_list() == [False, True, False]


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("semver_eq", "abc"),
        ("semver_gt", ""),
        ("semver_tilde", "~1.2.3"),
        ("semver_wildcard", "*"),
        ("semver_eq", None),
        ("semver_gt", ["1.2.3", "bad"]),
        ("semver_between", "1.2.3"),
        ("exact", "1.2.3"),
    ],
)
def test_predicate_rejects_invalid_filter_values_and_operators(operator: str, value: Any) -> None:
    with pytest.raises(ValueError):
        semver_predicate(pl.col("v"), operator, value)


def test_operator_set() -> None:
    comparisons = {"semver_eq", "semver_neq", "semver_gt", "semver_gte", "semver_lt", "semver_lte"}
    assert SEMVER_OPERATORS == comparisons | {"semver_tilde", "semver_caret", "semver_wildcard"}
