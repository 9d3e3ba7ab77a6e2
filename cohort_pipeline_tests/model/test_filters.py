"""The filter grammar (spec 3) and the leaf rules of spec 2.1, 4.3, 5.1 and 5.3.

Expected messages are PostHog's where the spec quotes them (``posthog_cohorts.md`` section in each comment);
every message names the JSON path of the offending node.
"""

from __future__ import annotations

from typing import Any

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.filters import (
    PERSON_OPERATORS,
    BehavioralFilter,
    CohortFilter,
    EventFilterGroup,
    FilterGroup,
    PersonFilter,
    iter_leaves,
    parse_filters,
)

P0 = "filters.properties.values[0]"


def wrap(*leaves: Any, group: str = "AND") -> dict[str, Any]:
    return {"properties": {"type": group, "values": list(leaves)}}


def error_of(data: Any, *, internal: bool = False) -> CohortValidationError:
    with pytest.raises(CohortValidationError) as caught:
        parse_filters(data, internal=internal)
    assert caught.value.attr == "filters"
    return caught.value


def person(**fields: Any) -> dict[str, Any]:
    return {"type": "person", "key": "plan", **fields}


def behavioral(value: str, **fields: Any) -> dict[str, Any]:
    return {"type": "behavioral", "key": "$pageview", "event_type": "events", "value": value, **fields}


WEEK = {"time_value": 1, "time_interval": "week"}

# ------------------------------------------------------------------------------------------- top level (2.1, 3.1)


@pytest.mark.parametrize("data", [None, [], "filters", {}, {"type": "AND", "values": []}, {"filterTestAccounts": True}])
def test_filters_must_be_an_object_with_properties(data: Any) -> None:
    # spec 2.1: "Must contain a 'properties' key with type and values"
    assert error_of(data).detail == "Must contain a 'properties' key with type and values"


def test_filter_test_accounts_is_accepted() -> None:
    # decision 6
    parsed = parse_filters({"properties": {"type": "OR", "values": []}, "filterTestAccounts": True})
    assert parsed.filterTestAccounts is True
    assert parse_filters({"properties": {"type": "OR", "values": []}}).filterTestAccounts is False


def test_spec_example_parses_into_typed_nodes() -> None:
    # spec 2.6, the dynamic cohort example
    data = {"properties": {"type": "OR", "values": [{"type": "AND", "values": [
        {"type": "person", "key": "plan", "operator": "exact", "value": "pro"},
        {"type": "behavioral", "key": "$pageview", "event_type": "events", "value": "performed_event",
         "time_value": 7, "time_interval": "day"},
        {"type": "cohort", "key": "id", "value": 77, "negation": True},
    ]}]}}
    root = parse_filters(data).properties
    assert isinstance(root, FilterGroup) and root.type == "OR"
    inner = root.values[0]
    assert isinstance(inner, FilterGroup) and inner.type == "AND"
    person_leaf, behavioral_leaf, cohort_leaf = inner.values
    assert isinstance(person_leaf, PersonFilter) and person_leaf.negation is False
    assert isinstance(behavioral_leaf, BehavioralFilter) and behavioral_leaf.time_interval == "day"
    assert isinstance(cohort_leaf, CohortFilter) and cohort_leaf.value == 77 and cohort_leaf.negation is True
    assert [leaf.type for leaf in iter_leaves(root)] == ["person", "behavioral", "cohort"]


def test_spec_leaf_examples_parse() -> None:
    # spec 3.3, every example
    leaves = [
        {"type": "person", "key": "email", "operator": "icontains", "value": "@acme.com", "negation": False},
        {"type": "person", "key": "plan", "operator": "exact", "value": ["pro", "enterprise"]},
        {"type": "person", "key": "utm_source", "operator": "is_not_set", "value": None},
        {"type": "person_metadata", "key": "created_at", "operator": "is_date_after", "value": "-30d"},
        {"type": "cohort", "key": "id", "value": 8814, "negation": True},
        {"type": "behavioral", "key": "$pageview", "event_type": "events", "value": "performed_event",
         "time_value": 30, "time_interval": "day", "negation": False,
         "event_filters": [{"type": "event", "key": "$current_url", "operator": "icontains", "value": "/pricing"}]},
        {"type": "behavioral", "key": 42, "event_type": "actions", "value": "performed_event_multiple",
         "operator": "gte", "operator_value": 5, "time_value": 2, "time_interval": "week"},
    ]
    assert len(list(iter_leaves(parse_filters(wrap(*leaves)).properties))) == len(leaves)


# ------------------------------------------------------------------------------ structure and unknown keys (2.1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"properties": {"type": "OR", "values": []}, "foo": 1}, "filters: Extra inputs are not permitted (key 'foo')"),
        ({"properties": {"type": "OR", "values": [], "foo": 1}},
         "filters.properties: Extra inputs are not permitted (key 'foo')"),
        (wrap({"type": "AND", "values": [], "negation": True}),
         f"{P0}: Extra inputs are not permitted (key 'negation')"),
        (wrap({"type": "OR", "values": [{"type": "AND", "values": [], "x": 1}]}),
         f"{P0}.values[0]: Extra inputs are not permitted (key 'x')"),
        (wrap({"type": "AND", "values": [person(operator="exact", value=1), person(operator="exact", value=1, foo=1)]}),
         f"{P0}.values[1]: Extra inputs are not permitted (key 'foo')"),
        (wrap(person(operator="exact", value="a", label="x")), f"{P0}: Extra inputs are not permitted (key 'label')"),
        (wrap({"type": "person_metadata", "key": "created_at", "operator": "is_set", "x": 1}),
         f"{P0}: Extra inputs are not permitted (key 'x')"),
        (wrap({"type": "cohort", "key": "id", "value": 3, "operator": "in"}),
         f"{P0}: Extra inputs are not permitted (key 'operator')"),
        (wrap(behavioral("performed_event", **WEEK, interval="day")),
         f"{P0}: Extra inputs are not permitted (key 'interval')"),
        (wrap(behavioral("performed_event", **WEEK, event_filters=[{"type": "event", "key": "a", "value": 1, "z": 0}])),
         f"{P0}.event_filters[0]: Extra inputs are not permitted (key 'z')"),
        (wrap(behavioral("performed_event", **WEEK, event_filters={"type": "AND", "values": [], "z": 0})),
         f"{P0}.event_filters: Extra inputs are not permitted (key 'z')"),
    ],
)
def test_unknown_keys_are_rejected_at_every_level(data: dict[str, Any], expected: str) -> None:
    assert error_of(data).detail == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (wrap({"type": "event", "key": "a", "value": 1}),
         f"{P0}: Unknown filter type 'event'. Supported types: behavioral, cohort, person, person_metadata"),
        (wrap({"key": "a", "value": 1}),
         f"{P0}: A filter needs a 'type' (a leaf type, or AND/OR with 'values' for a group)"),
        (wrap("plan"), f'{P0}: Expected a filter object or an AND/OR group, got "plan"'),
        (wrap({"type": "AND"}), f"{P0}.values: Field required"),
        (wrap({"type": "NOT", "values": []}), f"{P0}.type: Input should be 'AND' or 'OR'"),
        ({"properties": {"type": "XOR", "values": []}}, "filters.properties.type: Input should be 'AND' or 'OR'"),
        ({"properties": {"values": []}}, "filters.properties.type: Field required"),
        ({"properties": []}, "filters.properties: Input should be a valid dictionary or instance of FilterGroup"),
        ({"properties": {"type": "AND", "values": {}}}, "filters.properties.values: Input should be a valid list"),
    ],
)
def test_structural_errors_name_the_path(data: dict[str, Any], expected: str) -> None:
    assert error_of(data).detail == expected


def test_several_errors_are_reported_together() -> None:
    detail = error_of(wrap(person(operator="exact", value=1, foo=1), person())).detail
    assert detail == (
        f"{P0}: Extra inputs are not permitted (key 'foo'); "
        "filters.properties.values[1]: Missing required keys for person filter: value, operator"
    )


def test_server_added_keys_are_accepted_and_dropped() -> None:
    # spec 3.4: bytecode / bytecode_error / conditionHash are stored by PostHog on each leaf
    leaf = person(operator="exact", value="pro", bytecode=["_H", 1], bytecode_error=None, conditionHash="ab12")
    parsed = parse_filters(wrap(leaf)).properties.values[0]
    assert "bytecode" not in parsed.model_dump()


# ----------------------------------------------------------------------------------------- person leaves (2.1)


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (person(), "Missing required keys for person filter: value, operator"),
        (person(value="pro"), "Missing required keys for person filter: operator"),
        (person(operator="exact"), "Missing required keys for person filter: value"),
        (person(operator="exact", value=None), "Missing required keys for person filter: value"),
        (person(operator="gt"), "Missing required keys for person filter: value"),
        ({"type": "person_metadata", "key": "created_at"},
         "Missing required keys for person_metadata filter: value, operator"),
        ({"type": "person_metadata", "key": "created_at", "value": "-7d"},
         "Missing required keys for person_metadata filter: operator"),
        ({"type": "person", "operator": "exact", "value": 1}, "Missing required keys for person filter: key"),
    ],
)
def test_person_leaf_missing_keys(leaf: dict[str, Any], expected: str) -> None:
    assert error_of(wrap(leaf)).detail == f"{P0}: {expected}"


@pytest.mark.parametrize("operator", ["is_set", "is_not_set"])
def test_value_is_optional_for_is_set(operator: str) -> None:
    assert parse_filters(wrap(person(operator=operator))).properties.values[0].value is None


def test_missing_operator_means_exact_only_internally() -> None:
    # clarification 16: a 400 from clients, ``exact`` for the engine on stored / legacy definitions
    assert error_of(wrap(person(value="pro"))).detail == f"{P0}: Missing required keys for person filter: operator"
    leaf = parse_filters(wrap(person(value="pro")), internal=True).properties.values[0]
    assert leaf.operator == "exact"
    leaf = parse_filters(wrap(person()), internal=True).properties.values[0]
    assert (leaf.operator, leaf.value) == ("exact", None)


def test_person_metadata_key_is_created_at_only() -> None:
    # spec 2.1, in both modes
    leaf = {"type": "person_metadata", "key": "email", "operator": "exact", "value": "a"}
    expected = f"{P0}: Unsupported person_metadata key 'email'. Allowed keys: created_at."
    assert error_of(wrap(leaf)).detail == expected
    assert error_of(wrap(leaf), internal=True).detail == expected


def test_unknown_operator_is_rejected_from_clients_and_kept_internally() -> None:
    expected = (
        f"{P0}: Unknown operator 'contains' for person filter. Supported operators: {', '.join(PERSON_OPERATORS)}."
    )
    assert error_of(wrap(person(operator="contains", value="a"))).detail == expected
    meta = {"type": "person_metadata", "key": "created_at", "operator": "after", "value": "-1d"}
    assert "Unknown operator 'after' for person_metadata filter." in error_of(wrap(meta)).detail
    leaf = parse_filters(wrap(person(operator="contains", value="a")), internal=True).properties.values[0]
    assert leaf.operator == "contains"


def test_person_operators_are_the_operators_of_section_4_3() -> None:
    assert set(PERSON_OPERATORS) == {
        "exact", "is_not", "icontains", "not_icontains", "icontains_multi", "not_icontains_multi", "regex",
        "not_regex", "gt", "gte", "lt", "lte", "min", "max", "between", "not_between", "is_set", "is_not_set",
        "in", "not_in", "is_date_before", "is_date_after", "is_date_exact", "is_cleaned_path_exact",
        "semver_eq", "semver_neq", "semver_gt", "semver_gte", "semver_lt", "semver_lte", "semver_tilde",
        "semver_caret", "semver_wildcard",
    }
    assert len(PERSON_OPERATORS) == len(set(PERSON_OPERATORS))


DATE_HINT = "Expected a relative date (e.g., '-7d', '30d') or an ISO 8601 date (e.g., '2024-01-15')."


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        # dates (spec 2.1 _validate_date_value)
        ("is_date_before", "yesterday", f"Invalid date value 'yesterday' for operator 'is_date_before'. {DATE_HINT}"),
        ("is_date_after", "not a date", f"Invalid date value 'not a date' for operator 'is_date_after'. {DATE_HINT}"),
        ("is_date_after", ["-7d", "soon"], f"Invalid date value 'soon' for operator 'is_date_after'. {DATE_HINT}"),
        # regex (decision 8: Rust regex syntax, 400 at create time)
        ("regex", "a(", "Invalid regular expression 'a(' for operator 'regex': unclosed group"),
        ("not_regex", "?.", "Invalid regular expression '?.' for operator 'not_regex': "
                            "repetition operator missing expression"),
        ("regex", "(?<=a)b", "Invalid regular expression '(?<=a)b' for operator 'regex': "
                             "look-around, including look-ahead and look-behind, is not supported"),
        ("regex", ["ok", "a("], "Invalid regular expression 'a(' for operator 'regex': unclosed group"),
        # ranges (spec 4.3 between)
        ("between", 5, "between operator requires a two-element array [min, max]"),
        ("between", [1, 2, 3], "between operator requires a two-element array [min, max]"),
        ("not_between", [1], "not_between operator requires a two-element array [min, max]"),
        ("between", ["a", 2], "between operator requires numeric values"),
        ("between", [True, 2], "between operator requires numeric values"),
        ("between", [None, 2], "between operator requires numeric values"),
        ("between", [5, 1], "between operator requires min value to be less than or equal to max value"),
        # lists (spec 4.3 in / not_in)
        ("in", "pro", "in operator requires a list of values"),
        ("not_in", {"a": 1}, "not_in operator requires a list of values"),
        # semver (spec 4.3 parse_semver)
        ("semver_eq", "1.x.3", "Invalid semver value for operator semver_eq: 1.x.3"),
        ("semver_gte", "abc", "Invalid semver value for operator semver_gte: abc"),
        ("semver_tilde", 1, "Invalid value for operator semver_tilde: expected a semver string"),
        ("semver_wildcard", "x.*", "Invalid semver value for operator semver_wildcard: x.*"),
    ],
)
def test_operator_values_are_checked_for_clients(operator: str, value: Any, expected: str) -> None:
    assert error_of(wrap(person(operator=operator, value=value))).detail == f"{P0}: {expected}"
    # the engine gets the definition unchanged and decides (calculation error / matches nobody)
    parse_filters(wrap(person(operator=operator, value=value)), internal=True)


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("is_date_before", "-7d"),
        ("is_date_after", "30d"),
        ("is_date_before", "2024-01-15"),
        ("is_date_after", "2024-01-15T10:00:00Z"),
        ("is_date_after", []),
        ("is_date_exact", "whenever"),  # not validated, as in PostHog (spec 4.3)
        ("regex", r"^\d+@acme\.com$"),
        ("regex", "(?i)pro"),
        ("regex", r"\p{L}+"),  # Rust syntax that Python's re does not know
        ("not_regex", 5),
        ("between", [1, 10]),
        ("between", [2, 2]),
        ("not_between", ["1.5", 3]),
        ("in", []),
        ("in", ["a", "b"]),
        ("semver_eq", "1.2.3"),
        ("semver_gt", "1.2.3-beta"),
        ("semver_caret", "0.2"),
        ("semver_wildcard", "1.*.*"),  # conformance 126
        ("semver_wildcard", "1.2.*"),
        ("exact", ["pro", "enterprise"]),
        ("exact", ""),
        ("icontains_multi", "a"),
        ("gt", "10"),
    ],
)
def test_valid_operator_values(operator: str, value: Any) -> None:
    parse_filters(wrap(person(operator=operator, value=value)))


# ---------------------------------------------------------------------------------------- cohort leaves (3.2)


@pytest.mark.parametrize(("value", "expected"), [(77, 77), ("77", 77), (0, 0)])
def test_cohort_id_accepts_int_or_digit_string(value: Any, expected: int) -> None:
    leaf = parse_filters(wrap({"type": "cohort", "key": "id", "value": value})).properties.values[0]
    assert leaf.value == expected and leaf.key == "id"


@pytest.mark.parametrize("value", ["0 OR 1=1", "1; DROP TABLE", "", " 7", "7.0", 7.5, True, None, [7], -3, "٣"])
@pytest.mark.parametrize("internal", [False, True])
def test_cohort_id_rejects_anything_else(value: Any, internal: bool) -> None:
    # conformance 076: a non-integer id is rejected (never interpolated), also on the engine's path
    detail = error_of(wrap({"type": "cohort", "key": "id", "value": value}), internal=internal).detail
    assert detail == f"{P0}.value: Cohort id must be an integer, got {value!r}"


def test_cohort_leaf_without_value() -> None:
    # spec 2.1: "Missing required keys for <kind> filter: <field>"
    detail = error_of(wrap({"type": "cohort", "key": "id"})).detail
    assert detail == f"{P0}: Missing required keys for cohort filter: value"


def test_cohort_key_defaults_to_id_and_must_be_id() -> None:
    assert parse_filters(wrap({"type": "cohort", "value": 3})).properties.values[0].key == "id"
    assert error_of(wrap({"type": "cohort", "key": "name", "value": 3})).detail == f"{P0}.key: Input should be 'id'"


@pytest.mark.parametrize("leaf_type", ["static-cohort", "precalculated-cohort", "dynamic-cohort"])
def test_internal_cohort_types_only_internally(leaf_type: str) -> None:
    # spec 3.2: internal types must not be accepted from clients
    leaf = {"type": leaf_type, "key": "id", "value": "12"}
    assert error_of(wrap(leaf)).detail == (
        f"{P0}: Filter type '{leaf_type}' is internal and not accepted in cohort filters; use type 'cohort'"
    )
    parsed = parse_filters(wrap(leaf), internal=True).properties.values[0]
    assert isinstance(parsed, CohortFilter) and (parsed.type, parsed.value) == (leaf_type, 12)


def test_unknown_type_message_lists_internal_types_internally() -> None:
    detail = error_of(wrap({"type": "group", "key": "x"}), internal=True).detail
    assert detail.endswith("Supported types: behavioral, cohort, person, person_metadata, static-cohort, "
                           "precalculated-cohort, dynamic-cohort")


def test_internal_parsing_drops_unknown_keys_and_reads_not_in_as_negation() -> None:
    # spec 3.5: outside cohort definitions "not in cohort" is operator not_in
    data = wrap({"type": "cohort", "key": "id", "value": 4, "operator": "not_in"}, person(value=1, label="old"))
    cohort_leaf, person_leaf = parse_filters(data, internal=True).properties.values
    assert cohort_leaf.negation is True
    assert person_leaf.operator == "exact"


# ------------------------------------------------------------------------------------- behavioural (5.1, 5.3)


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        # required keys (spec 2.1 pattern "Missing required keys for behavioral filter: <field>")
        ({"type": "behavioral", "key": "$pageview", "value": "performed_event", **WEEK},
         "Missing required keys for behavioral filter: event_type"),
        ({"type": "behavioral", "event_type": "events", "value": "performed_event", **WEEK},
         "Missing required keys for behavioral filter: key"),
        ({"type": "behavioral", "key": "$pageview", "event_type": "events", **WEEK},
         "Missing required keys for behavioral filter: value"),
        (behavioral("performed_event"), "Missing required keys for behavioral filter: time_value, time_interval"),
        (behavioral("performed_event", time_value=3), "Missing required keys for behavioral filter: time_interval"),
        (behavioral("performed_event_first_time", time_interval="day"),
         "Missing required keys for behavioral filter: time_value"),
        (behavioral("performed_event_multiple", **WEEK), "Missing required keys for behavioral filter: operator_value"),
        (behavioral("performed_event_multiple", operator_value=2),
         "Missing required keys for behavioral filter: time_value, time_interval"),
        (behavioral("performed_event_sequence", **WEEK),
         "Missing required keys for behavioral filter: seq_event, seq_event_type, seq_time_value, seq_time_interval"),
        (behavioral("performed_event_sequence", **WEEK, seq_event="b", seq_event_type="events", seq_time_value=1),
         "Missing required keys for behavioral filter: seq_time_interval"),
        (behavioral("performed_event_regularly", **WEEK, operator="gte"),
         "Missing required keys for behavioral filter: operator_value, min_periods, total_periods"),
        (behavioral("performed_event_regularly", explicit_datetime="-7d", operator_value=1, min_periods=1,
                    total_periods=2),
         "Missing required keys for behavioral filter: time_value, time_interval"),
        (behavioral("stopped_performing_event", **WEEK),
         "Missing required keys for behavioral filter: seq_time_value, seq_time_interval"),
        (behavioral("restarted_performing_event", seq_time_value=1, seq_time_interval="day"),
         "Missing required keys for behavioral filter: time_value, time_interval"),
        (behavioral("stopped_performing_event", explicit_datetime="-30d", seq_time_value=1, seq_time_interval="day"),
         "Missing required keys for behavioral filter: time_value, time_interval"),
        # positive integers (spec 5.1 "time_value must be greater than 0" and the same for the others)
        (behavioral("performed_event", time_value=0, time_interval="day"), "time_value must be greater than 0"),
        (behavioral("performed_event_first_time", time_value=-2, time_interval="day"),
         "time_value must be greater than 0"),
        (behavioral("stopped_performing_event", **WEEK, seq_time_value=0, seq_time_interval="day"),
         "seq_time_value must be greater than 0"),
        (behavioral("performed_event_multiple", **WEEK, operator="gte", operator_value=0),
         "operator_value must be greater than 0"),
        (behavioral("performed_event_multiple", **WEEK, operator="eq", operator_value=0),  # conformance 008
         "operator_value must be greater than 0"),
        (behavioral("performed_event_regularly", **WEEK, operator_value=-1, min_periods=1, total_periods=2),
         "operator_value must be greater than 0"),
        (behavioral("performed_event_regularly", **WEEK, operator_value=1, min_periods=0, total_periods=2),
         "min_periods must be greater than 0"),
        (behavioral("performed_event_regularly", **WEEK, operator_value=1, min_periods=1, total_periods=0),
         "total_periods must be greater than 0"),
        # count operators (spec 5.3 multiple; decision 7 regularly)
        (behavioral("performed_event_multiple", **WEEK, operator="neq", operator_value=2),
         "count_operator must be gt(e), lt(e), exact, or None"),
        (behavioral("performed_event_multiple", **WEEK, operator="between", operator_value=2),
         "count_operator must be gt(e), lt(e), exact, or None"),
        (behavioral("performed_event_regularly", **WEEK, operator="gt", operator_value=1, min_periods=1,
                    total_periods=2),
         "performed_event_regularly operator must be gte, lte, exact (or eq), or None"),
        (behavioral("performed_event_regularly", **WEEK, operator="lt", operator_value=1, min_periods=1,
                    total_periods=2),
         "performed_event_regularly operator must be gte, lte, exact (or eq), or None"),
        # periods (spec 5.3 regularly)
        (behavioral("performed_event_regularly", **WEEK, operator="gte", operator_value=1, min_periods=4,
                    total_periods=3),
         "min_periods (4) cannot be greater than total_periods (3)"),
        # event filters of performed_event_multiple (spec 5.3)
        (behavioral("performed_event_multiple", **WEEK, operator_value=2,
                    event_filters={"type": "AND", "values": [{"type": "event", "key": "a", "value": 1}]}),
         "Property groups are not supported in this behavioral cohort type"),
        (behavioral("performed_event_multiple", **WEEK, operator_value=2,
                    event_filters=[{"type": "element", "key": "text", "value": "Buy"}]),
         "Property type not supported"),
        # seq window longer than time window (clarification 15; months 30 days, years 365, compared in seconds)
        (behavioral("stopped_performing_event", time_value=7, time_interval="day", seq_time_value=8,
                    seq_time_interval="day"), "seq_date must be more recent than date"),
        (behavioral("restarted_performing_event", time_value=30, time_interval="day", seq_time_value=1,
                    seq_time_interval="month", negation=False), None),
        (behavioral("restarted_performing_event", time_value=29, time_interval="day", seq_time_value=1,
                    seq_time_interval="month"), "seq_date must be more recent than date"),
        (behavioral("stopped_performing_event", time_value=364, time_interval="day", seq_time_value=1,
                    seq_time_interval="year"), "seq_date must be more recent than date"),
        (behavioral("stopped_performing_event", time_value=1, time_interval="hour", seq_time_value=61,
                    seq_time_interval="minute"), "seq_date must be more recent than date"),
        (behavioral("performed_event_sequence", time_value=1, time_interval="day", seq_event="b",
                    seq_event_type="events", seq_time_value=2, seq_time_interval="day"),
         "seq_date must be more recent than date"),
    ],
)
def test_behavior_table(leaf: dict[str, Any], expected: str | None) -> None:
    if expected is None:
        parse_filters(wrap(leaf))
        return
    detail = error_of(wrap(leaf)).detail
    assert detail == f"{P0}: {expected}"
    # PostHog's query builder raises the same rules when calculating (conformance 008): internal parsing too
    assert error_of(wrap(leaf), internal=True).detail == detail


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("event_type", "people", "event_type: Event type must be 'events' or 'actions'"),
        ("time_interval", "fortnight", "time_interval: Invalid interval: fortnight"),
        ("time_interval", "days", "time_interval: Invalid interval: days"),
        ("value", "did_something", "value: Invalid behavioral filter value 'did_something'. Expected one of: "
                                   "performed_event, performed_event_multiple, performed_event_first_time, "
                                   "performed_event_sequence, performed_event_regularly, stopped_performing_event, "
                                   "restarted_performing_event"),
        ("time_value", "soon", "time_value: Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_behavioral_field_messages(field: str, value: Any, expected: str) -> None:
    leaf = {**behavioral("performed_event", **WEEK), field: value}
    assert error_of(wrap(leaf)).detail == f"{P0}.{expected}"


def test_seq_fields_have_the_same_messages() -> None:
    leaf = behavioral("stopped_performing_event", **WEEK, seq_time_value=1, seq_time_interval="eon")
    assert error_of(wrap(leaf)).detail == f"{P0}.seq_time_interval: Invalid interval: eon"
    leaf = behavioral("performed_event_sequence", **WEEK, seq_event="b", seq_event_type="people", seq_time_value=1,
                      seq_time_interval="day")
    assert error_of(wrap(leaf)).detail == f"{P0}.seq_event_type: Event type must be 'events' or 'actions'"


@pytest.mark.parametrize(
    "leaf",
    [
        behavioral("performed_event", explicit_datetime="-1w"),  # conformance 002
        behavioral("performed_event", explicit_datetime="2024-01-01", explicit_datetime_to="2024-02-01"),
        behavioral("performed_event_first_time", time_value="30", time_interval="day"),  # PostHog help text: "30"
        behavioral("performed_event_multiple", **WEEK, operator=None, operator_value=5),
        *(behavioral("performed_event_multiple", **WEEK, operator=op, operator_value=1)
          for op in ("eq", "exact", "gte", "lte", "gt", "lt")),
        behavioral("performed_event_multiple", **WEEK, operator_value=1,
                   event_filters=[{"type": "event", "key": "a", "operator": "exact", "value": 1},
                                  {"type": "event", "key": "b", "operator": "is_set"}]),
        behavioral("performed_event_multiple", explicit_datetime="-7d", operator="gte", operator_value=3),
        {**behavioral("performed_event", **WEEK), "key": 42, "event_type": "actions"},
        behavioral("performed_event_sequence", time_value=7, time_interval="day", seq_event="$pageview",
                   seq_event_type="events", seq_time_value=3, seq_time_interval="day"),  # conformance 038
        behavioral("performed_event_sequence", time_value=1, time_interval="week", seq_event=7,
                   seq_event_type="actions", seq_time_value=7, seq_time_interval="day"),  # equal windows are fine
        *(behavioral("performed_event_regularly", time_value=1, time_interval="day", operator=op, operator_value=1,
                     min_periods=3, total_periods=3) for op in ("gte", "lte", "exact", "eq", None)),
        behavioral("restarted_performing_event", time_value=1, time_interval="week", seq_time_value=2,
                   seq_time_interval="day"),  # conformance 011
        behavioral("stopped_performing_event", time_value=1, time_interval="year", seq_time_value=365,
                   seq_time_interval="day"),
        behavioral("performed_event", time_value=5, time_interval="minute"),
        behavioral("performed_event", **WEEK, event_filters={"type": "OR", "values": [
            {"type": "event", "key": "a", "operator": "exact", "value": 1},
            {"type": "AND", "values": [{"type": "event", "key": "b", "operator": "icontains", "value": "x"}]}]}),
        behavioral("performed_event", operator="whatever", operator_value=0, **WEEK),  # ignored by performed_event
    ],
)
def test_valid_behavioral_leaves(leaf: dict[str, Any]) -> None:
    parse_filters(wrap(leaf))


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ({**behavioral("performed_event", **WEEK), "key": "checkout", "event_type": "actions"},
         "key must be an action id (an integer) when event_type is 'actions', got 'checkout'"),
        (behavioral("performed_event_sequence", **WEEK, seq_event="signup", seq_event_type="actions",
                    seq_time_value=1, seq_time_interval="day"),
         "seq_event must be an action id (an integer) when seq_event_type is 'actions', got 'signup'"),
        (behavioral("performed_event", **WEEK, event_filters=[{"type": "hogql", "key": "properties.a = 1"}]),
         "Event filters of type 'hogql' are not supported; use 'event' property filters"),
        (behavioral("performed_event", **WEEK, event_filters={"type": "OR", "values": [
            {"type": "AND", "values": [{"type": "element", "key": "text", "value": "Buy"}]}]}),
         "Event filters of type 'element' are not supported; use 'event' property filters"),
        (behavioral("stopped_performing_event", **WEEK, seq_time_value=1, seq_time_interval="day",
                    explicit_datetime="-3d"),
         "explicit_datetime is not supported for stopped_performing_event; use time_value and time_interval"),
        (behavioral("performed_event_regularly", time_value=1, time_interval="day", operator_value=1,
                    min_periods=1, total_periods=2, explicit_datetime_to="-1d"),
         "explicit_datetime_to is not supported for performed_event_regularly; use time_value and time_interval"),
    ],
)
def test_behavioral_leaves_the_engine_cannot_calculate_are_refused_on_save(leaf: dict[str, Any], message: str) -> None:
    assert error_of(wrap(leaf)).detail == f"{P0}: {message}"
    parse_filters(wrap(leaf), internal=True)  # stored definitions still parse; the engine reports the problem


def test_event_filter_group_is_typed() -> None:
    leaf = behavioral("performed_event", **WEEK, event_filters={"type": "OR", "values": [
        {"type": "event", "key": "a", "value": 1}, {"type": "AND", "values": []}]})
    parsed = parse_filters(wrap(leaf)).properties.values[0]
    assert isinstance(parsed.event_filters, EventFilterGroup)
    assert isinstance(parsed.event_filters.values[1], EventFilterGroup)


@pytest.mark.parametrize(
    ("event_filter", "expected"),
    [
        ({"type": "event", "key": "a", "operator": "has", "value": 1},
         f"Unknown operator 'has' for event filter. Supported operators: {', '.join(PERSON_OPERATORS)}."),
        ({"type": "element", "key": "href", "operator": "regex", "value": "("},
         "Invalid regular expression '(' for operator 'regex': unclosed group"),
        ({"type": "person", "key": "a", "value": 1}, "type: Input should be 'event', 'element' or 'hogql'"),
        ({"type": "hogql", "key": " "}, "A hogql event filter needs an expression in 'key'"),
    ],
)
def test_event_filter_rules(event_filter: dict[str, Any], expected: str) -> None:
    leaf = behavioral("performed_event", **WEEK, event_filters=[event_filter])
    detail = error_of(wrap(leaf)).detail
    path = f"{P0}.event_filters[0]"
    assert detail == (f"{path}.{expected}" if expected.startswith("type:") else f"{path}: {expected}")


@pytest.mark.parametrize(
    ("field", "value"), [("explicit_datetime", "last tuesday"), ("explicit_datetime_to", "someday")]
)
def test_explicit_datetimes_are_dates(field: str, value: str) -> None:
    leaf = behavioral("performed_event", **{"explicit_datetime": "-7d", field: value})
    assert error_of(wrap(leaf)).detail == f"{P0}: Invalid {field} '{value}'. {DATE_HINT}"


def test_legacy_converted_performed_event_with_count_zero_is_accepted() -> None:
    # spec 6.5: an action group without count becomes performed_event with operator_value 0
    leaf = {"type": "behavioral", "key": 3, "event_type": "actions", "value": "performed_event",
            "time_interval": "day", "time_value": 365, "operator": "eq", "operator_value": 0}
    for internal in (False, True):
        parsed = parse_filters(wrap(leaf), internal=internal).properties.values[0]
        assert parsed.operator_value == 0


def test_models_built_in_python_are_trusted() -> None:
    # the engine builds groups directly (e.g. AND of a cohort and the test-account filters)
    group = FilterGroup(type="AND", values=[PersonFilter(type="person", key="a", value=1), {"type": "person",
                                                                                            "key": "b"}])
    assert [leaf.operator for leaf in iter_leaves(group)] == ["exact", "exact"]
    nested = FilterGroup(type="OR", values=[group, CohortFilter(type="dynamic-cohort", value=3)])
    assert [leaf.type for leaf in iter_leaves(nested)] == ["person", "person", "dynamic-cohort"]
