"""``cohort_type``: realtime eligibility (spec 8.1, 1.2(b)) and the validation classifier (spec 1.2(a), 2.1)."""

from __future__ import annotations

from typing import Any

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.cohort import CohortDefinition, parse_cohort
from cohort_pipeline.model.cohort_type import compute_cohort_type, required_cohort_type, validate_cohort_type

PERSON = {"type": "person", "key": "plan", "operator": "exact", "value": "pro"}
META = {"type": "person_metadata", "key": "created_at", "operator": "is_date_after", "value": "-30d"}
WEEK = {"time_value": 1, "time_interval": "week"}


def behavior(value: str, **fields: Any) -> dict[str, Any]:
    return {"type": "behavioral", "key": "$pageview", "event_type": "events", "value": value, **WEEK, **fields}


PERFORMED = behavior("performed_event")
MULTIPLE = behavior("performed_event_multiple", operator="gte", operator_value=3)
ANALYTICAL_LEAVES = {
    "performed_event_first_time": behavior("performed_event_first_time"),
    "performed_event_regularly": behavior("performed_event_regularly", operator="gte", operator_value=1,
                                          min_periods=2, total_periods=3),
    "performed_event_sequence": behavior("performed_event_sequence", seq_event="b", seq_event_type="events",
                                         seq_time_value=1, seq_time_interval="day"),
    "stopped_performing_event": behavior("stopped_performing_event", seq_time_value=1, seq_time_interval="day"),
    "restarted_performing_event": behavior("restarted_performing_event", seq_time_value=1, seq_time_interval="day"),
}


def ref(cohort_id: int, **fields: Any) -> dict[str, Any]:
    return {"type": "cohort", "key": "id", "value": cohort_id, **fields}


def dynamic(*leaves: dict[str, Any], internal: bool = False, **fields: Any) -> CohortDefinition:
    return parse_cohort({"filters": {"properties": {"type": "AND", "values": list(leaves)}}, **fields},
                        internal=internal)


# ------------------------------------------------------------------------------------------ realtime (8.1)


@pytest.mark.parametrize(
    ("leaves", "expected"),
    [
        ([PERSON], "realtime"),
        ([{**PERSON, "operator": op, "value": v}
          for op, v in [("icontains", "a"), ("regex", "^a"), ("is_set", None), ("between", [1, 2]),
                        ("semver_gte", "1.2.3"), ("is_date_before", "-7d")]], "realtime"),
        ([PERSON, PERFORMED, MULTIPLE], "realtime"),
        ([behavior("performed_event", event_filters=[{"type": "event", "key": "a", "operator": "exact",
                                                       "value": 1}])], "realtime"),
        ([PERSON, META], None),  # person_metadata disqualifies
        ([{**PERFORMED, "key": 42, "event_type": "actions"}], None),  # actions are unsupported
        ([{**PERFORMED, "key": "7", "event_type": "actions"}], None),
        *(([PERSON, leaf], None) for leaf in ANALYTICAL_LEAVES.values()),  # sequences and lifecycle behaviours
        ([behavior("performed_event", event_filters={"type": "AND", "values": [
            {"type": "event", "key": "a", "value": 1}]})], None),
        ([], "realtime"),  # every leaf (none) compiles, as in PostHog
    ],
)
def test_realtime_by_leaf(leaves: list[dict[str, Any]], expected: str | None) -> None:
    assert compute_cohort_type(dynamic(*leaves), {}, None) == expected


@pytest.mark.parametrize(
    ("referenced_types", "expected"),
    [({8: "realtime"}, "realtime"), ({8: None}, None), ({8: "behavioral"}, None), ({}, None)],
)
def test_cohort_leaf_is_realtime_only_if_its_target_is(referenced_types: dict[int, Any], expected: Any) -> None:
    assert compute_cohort_type(dynamic(PERSON, ref(8, negation=True)), referenced_types) == expected


def test_internal_cohort_leaves_are_not_realtime() -> None:
    definition = dynamic(PERSON, {"type": "static-cohort", "value": 8}, internal=True)
    assert compute_cohort_type(definition, {8: "realtime"}) is None


def test_unknown_operator_kept_internally_is_not_realtime() -> None:
    assert compute_cohort_type(dynamic({**PERSON, "operator": "contains"}, internal=True), {}) is None


@pytest.mark.parametrize(("count", "expected"), [(None, "realtime"), (20_000_000, "realtime"), (20_000_001, None)])
def test_person_count_limit(count: int | None, expected: str | None) -> None:
    assert compute_cohort_type(dynamic(PERSON), {}, count) == expected


def test_static_legacy_and_test_account_cohorts_are_not_realtime() -> None:
    static = parse_cohort({"is_static": True, "filters": {"properties": {"type": "AND", "values": [PERSON]}}})
    assert compute_cohort_type(static, {}) is None
    assert compute_cohort_type(parse_cohort({"groups": [{"properties": {"plan": "pro"}}]}), {}) is None
    with_tests = parse_cohort({"filters": {"properties": {"type": "AND", "values": [PERSON]},
                                           "filterTestAccounts": True}})
    assert compute_cohort_type(with_tests, {}) is None


# ------------------------------------------------------------------------------------------ classifier (1.2a)


def test_static_and_query_cohorts() -> None:
    assert required_cohort_type(parse_cohort({"is_static": True}), {}) == "static"
    query = parse_cohort({"is_static": False, "query": {"kind": "HogQLQuery"}}, internal=True)
    assert required_cohort_type(query, {}) == "analytical"


@pytest.mark.parametrize(
    ("leaves", "expected"),
    [
        ([PERSON], "person_property"),
        ([PERSON, PERFORMED], "behavioral"),
        ([MULTIPLE], "behavioral"),
        *(([PERSON, leaf], "analytical") for leaf in ANALYTICAL_LEAVES.values()),
        ([META, ANALYTICAL_LEAVES["performed_event_sequence"]], "analytical"),  # analytical wins before errors
    ],
)
def test_required_type_is_the_maximum_over_leaves(leaves: list[dict[str, Any]], expected: str) -> None:
    assert required_cohort_type(dynamic(*leaves), {}) == expected


def test_cohort_leaves_take_the_referenced_type() -> None:
    project = {
        1: parse_cohort({"is_static": True}),
        2: dynamic(PERSON),
        3: dynamic(PERSON, ref(2)),
        4: dynamic(PERFORMED),
        5: dynamic(ANALYTICAL_LEAVES["stopped_performing_event"]),
    }
    assert required_cohort_type(dynamic(ref(1)), project) == "static"
    assert required_cohort_type(dynamic(PERSON, ref(1)), project) == "person_property"
    assert required_cohort_type(dynamic(ref(3)), project) == "person_property"
    assert required_cohort_type(dynamic(PERSON, ref(4)), project) == "behavioral"
    assert required_cohort_type(dynamic(ref(5)), project) == "analytical"
    assert required_cohort_type(dynamic(ref(3)), project.get) == "person_property"  # a lookup function works too


@pytest.mark.parametrize(
    ("definition", "project", "expected"),
    [
        (dynamic(), {}, "Cannot determine type: no valid filters found"),
        (parse_cohort({}), {}, "Cannot determine type: no valid filters found"),
        (parse_cohort({"groups": [{"properties": {"a": 1}}]}), {}, "Cannot determine type: no valid filters found"),
        (dynamic(PERSON, META), {}, "Unknown property type: person_metadata"),
        (dynamic(PERSON, {"type": "dynamic-cohort", "value": 2}, internal=True), {},
         "Unknown property type: dynamic-cohort"),
        (dynamic(ref(0)), {}, "Cohort filter has no value"),
        (dynamic(ref(9)), {}, "Referenced cohort 9 not found"),
        (dynamic(ref(2)), {2: dynamic(ref(3)), 3: dynamic(ref(2))}, "Circular cohort reference detected"),
        (dynamic(ref(2), id=2), {2: dynamic(PERSON)}, "Circular cohort reference detected"),
        (dynamic(ref(2)), {2: dynamic()}, "Cannot determine type: no valid filters found"),
    ],
)
def test_classifier_errors(definition: CohortDefinition, project: dict[int, CohortDefinition], expected: str) -> None:
    with pytest.raises(CohortValidationError) as caught:
        required_cohort_type(definition, project)
    assert (caught.value.detail, caught.value.attr) == (expected, "cohort_type")


@pytest.mark.parametrize(
    ("sent", "leaves", "expected"),
    [
        (None, [PERSON], None),
        ("person_property", [PERSON], None),
        ("behavioral", [PERSON, PERFORMED], None),
        ("behavioral", [PERSON], "Cohort type 'behavioral' does not match the filters. Expected type: "
                                 "'person_property'"),
        ("realtime", [PERSON], "Cohort type 'realtime' does not match the filters. Expected type: "
                               "'person_property'"),
        ("static", [PERFORMED], "Cohort type 'static' does not match the filters. Expected type: 'behavioral'"),
    ],
)
def test_validate_cohort_type(sent: str | None, leaves: list[dict[str, Any]], expected: str | None) -> None:
    definition = dynamic(*leaves, cohort_type=sent)
    if expected is None:
        validate_cohort_type(definition, {})
        return
    with pytest.raises(CohortValidationError) as caught:
        validate_cohort_type(definition, {})
    assert (caught.value.detail, caught.value.attr) == (expected, "cohort_type")


def test_validate_cohort_type_runs_only_when_sent() -> None:
    validate_cohort_type(dynamic(PERSON, META), {})  # would be "Unknown property type" if it ran
