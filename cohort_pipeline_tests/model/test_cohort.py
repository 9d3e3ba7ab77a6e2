"""The cohort object: field and object rules of spec 2.1 / 2.2, decision 4 and the negation algebra of 6.2."""

from __future__ import annotations

from typing import Any

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.cohort import (
    CohortDefinition,
    check_root_not_negated,
    negation_flag,
    parse_cohort,
)
from cohort_pipeline.model.filters import BehavioralFilter, CohortFilter, FilterGroup, PersonFilter, parse_filters

ROOT_NEGATED = "Top level condition cannot be negated"
EMPTY_GROUP = "Cohort has a property group with no condition"


def pos(key: str = "plan") -> dict[str, Any]:
    return {"type": "person", "key": key, "operator": "exact", "value": "pro"}


def neg(key: str = "plan") -> dict[str, Any]:
    return {**pos(key), "negation": True}


def not_in_cohort(cohort_id: int = 8) -> dict[str, Any]:
    return {"type": "cohort", "key": "id", "value": cohort_id, "negation": True}


def did_not(event: str = "$pageview") -> dict[str, Any]:
    return {"type": "behavioral", "key": event, "event_type": "events", "value": "performed_event",
            "time_value": 30, "time_interval": "day", "negation": True}


def AND(*values: Any) -> dict[str, Any]:  # noqa: N802 - reads like the grammar
    return {"type": "AND", "values": list(values)}


def OR(*values: Any) -> dict[str, Any]:  # noqa: N802
    return {"type": "OR", "values": list(values)}


def group(node: dict[str, Any]) -> FilterGroup:
    return parse_filters({"properties": node}).properties


def error_of(data: dict[str, Any], **kwargs: Any) -> CohortValidationError:
    with pytest.raises(CohortValidationError) as caught:
        parse_cohort(data, **kwargs)
    return caught.value


# ------------------------------------------------------------------------------------------ negation (6.2, D4)


@pytest.mark.parametrize(
    ("root", "negated"),
    [
        # the consequences listed in 6.2: all rejected at the root
        (AND(neg()), True),  # "Did not complete X" alone (a negated person leaf alone)
        (OR(did_not()), True),
        (AND(not_in_cohort()), True),  # "NOT in cohort Y" alone
        (AND(neg("a"), neg("b")), True),  # all-negated AND
        (OR(pos(), neg()), True),  # a root OR mixing a positive and a negated child
        (OR(neg("a"), neg("b")), True),  # all-negated OR
        (OR(AND(neg())), True),  # the UI's two levels don't change anything
        (OR(AND(pos()), AND(neg())), True),
        (AND(OR(pos(), neg())), True),  # a ∨ ¬b nested in a one-child AND
        # allowed
        (AND(pos(), neg()), False),  # a negated leaf inside an AND that also has a positive leaf
        (AND(pos(), did_not(), not_in_cohort()), False),
        (OR(pos("a"), pos("b")), False),
        (AND(pos()), False),
        (AND(pos(), AND(neg())), False),  # a positive sibling higher up
        (AND(AND(pos()), OR(neg("a"), neg("b"))), False),
        (AND(OR(pos("a"), neg("b")), pos("c")), False),  # c − (b − a)
        (OR(AND(pos("a"), neg("b")), AND(pos("c"))), False),
        (OR(AND(AND(pos()), AND(neg()))), False),
    ],
)
def test_negation_flag_follows_section_6_2(root: dict[str, Any], negated: bool) -> None:
    assert negation_flag(group(root)) is negated
    if negated:
        with pytest.raises(CohortValidationError) as caught:
            check_root_not_negated(group(root))
        assert (caught.value.detail, caught.value.attr) == (ROOT_NEGATED, "filters")
        assert error_of({"filters": {"properties": root}}).detail == ROOT_NEGATED
    else:
        check_root_not_negated(group(root))
        parse_cohort({"filters": {"properties": root}})


def test_leaf_flag_is_its_negation() -> None:
    assert negation_flag(PersonFilter(type="person", key="a", value=1, negation=True)) is True
    assert negation_flag(CohortFilter(type="cohort", value=1)) is False


@pytest.mark.parametrize(
    "root",
    [AND(AND()), OR(pos(), AND()), AND(pos(), OR(AND(pos()), OR())), OR(AND())],
)
def test_nested_empty_group_is_rejected(root: dict[str, Any]) -> None:
    # spec 3.1: PostHog fails the calculation with this message; decided: a 400 at create time
    assert error_of({"filters": {"properties": root}}).detail == EMPTY_GROUP


@pytest.mark.parametrize("root", [AND(), OR()])
def test_root_without_leaves_is_allowed(root: dict[str, Any]) -> None:
    # spec 3.1: matches nobody, calculation error code no_properties
    cohort = parse_cohort({"filters": {"properties": root}})
    assert cohort.effective_filters() is not None and list(cohort.leaves()) == []


def test_negation_is_not_checked_internally() -> None:
    # a stored negative-only cohort is the engine's calculation error, not a parse error
    cohort = parse_cohort({"filters": {"properties": AND(neg())}}, internal=True)
    assert cohort.effective_filters().values[0].negation is True


# ------------------------------------------------------------------------------------------------ fields (2.1)


@pytest.mark.parametrize(
    ("data", "detail", "attr"),
    [
        ({"name": "x" * 401}, "Ensure this field has no more than 400 characters.", "name"),
        ({"description": "x" * 1001}, "Ensure this field has no more than 1000 characters.", "description"),
        ({"is_static": "maybe"}, "Input should be a valid boolean, unable to interpret input", "is_static"),
        ({"cohort_type": "fancy"}, '"fancy" is not a valid choice.', "cohort_type"),
        ({"groups": {"a": 1}}, "Input should be a valid list", "groups"),
        ({"_create_static_person_ids": "abc"}, "Input should be a valid list", "_create_static_person_ids"),
        ({"nmae": "typo"}, "Extra inputs are not permitted (key 'nmae')", "nmae"),
        ({"query": ["select 1"], "is_static": True}, "Query must be a dictionary.", "query"),
        ({"query": "select 1", "is_static": True}, "Query must be a dictionary.", "query"),
        ({"query": {"kind": "EventsQuery"}, "is_static": True}, "Query must be an ActorsQuery or HogQLQuery. Got: "
                                                                "EventsQuery", "query"),
        ({"query": {}, "is_static": True}, "Query must be an ActorsQuery or HogQLQuery. Got: None", "query"),
        ({"filters": {}}, "Must contain a 'properties' key with type and values", "filters"),
        ({"filters": {"properties": {}}}, "filters.properties.type: Field required; "
                                          "filters.properties.values: Field required", "filters"),
    ],
)
def test_field_rules(data: dict[str, Any], detail: str, attr: str) -> None:
    error = error_of(data)
    assert (error.detail, error.attr) == (detail, attr)


def test_limits_are_inclusive() -> None:
    cohort = parse_cohort({"name": "x" * 400, "description": "d" * 1000})
    assert len(cohort.name) == 400


def test_read_only_fields_are_ignored() -> None:
    # a client may send back what it read (spec 1.1 read-only fields), as DRF ignores them
    cohort = parse_cohort({"name": "n", "id": 5, "version": 3, "pending_version": 4, "count": 10,
                           "is_calculating": True, "created_by": {"id": 1}, "last_calculation": None,
                           "errors_calculating": 0, "experiment_set": [], "last_error_message": None})
    assert (cohort.id, cohort.name) == (5, "n")


def test_defaults_and_aliases() -> None:
    cohort = parse_cohort({})
    assert cohort == CohortDefinition()
    assert (cohort.name, cohort.description, cohort.is_static, cohort.deleted, cohort.groups) == (
        None, "", False, False, [])
    assert cohort.filters is None and cohort.query is None and cohort.cohort_type is None
    assert cohort.effective_filters() is None and list(cohort.leaves()) == []
    ids = ["0190a8f0-0000-7000-8000-000000000001"]
    cohort = parse_cohort({"is_static": "true", "_create_static_person_ids": ids, "_create_in_folder": "Team/x"})
    assert cohort.is_static is True and cohort.create_static_person_ids == ids
    assert cohort.create_in_folder == "Team/x"
    assert cohort.model_dump(by_alias=True)["_create_static_person_ids"] == ids


@pytest.mark.parametrize(
    "filters",
    [{"properties": {}}, {"properties": {"type": "AND", "values": []}}, {}, None, {"properties": {"values": []}}],
)
def test_static_cohort_filters_without_values_are_not_validated(filters: Any) -> None:
    # spec 2.1: filters are validated for static cohorts only when they contain a value (web app: {"properties": {}})
    cohort = parse_cohort({"name": "csv upload", "is_static": True, "filters": filters})
    assert cohort.filters is None


def test_static_cohort_with_criteria_is_validated() -> None:
    error = error_of({"is_static": True, "filters": {"properties": AND({"type": "person", "key": "a"})}})
    assert error.detail == "filters.properties.values[0]: Missing required keys for person filter: value, operator"


# ------------------------------------------------------------------------------------------ object rules (2.2)


def test_query_with_filters_is_rejected() -> None:
    error = error_of({"is_static": True, "query": {"kind": "HogQLQuery", "query": "select 1"},
                      "filters": {"properties": AND(pos())}})
    assert (error.detail, error.attr) == ("Cannot set both query and filters at the same time.", None)


def test_query_with_empty_filters_is_fine() -> None:
    cohort = parse_cohort({"is_static": True, "query": {"kind": "HogQLQuery", "query": "select 1"},
                           "filters": {"properties": {}}})
    assert cohort.query == {"kind": "HogQLQuery", "query": "select 1"} and cohort.filters is None


@pytest.mark.parametrize("query", [{"kind": "HogQLQuery", "query": "select 1"}, {"kind": "ActorsQuery"}])
def test_dynamic_cohort_with_query_is_rejected(query: dict[str, Any]) -> None:
    error = error_of({"query": query})
    assert (error.detail, error.attr) == ("Cannot create a dynamic cohort with a query. Set is_static to true.", None)


def test_static_cohort_with_query_is_fine() -> None:
    assert parse_cohort({"is_static": True, "query": {"kind": "ActorsQuery"}}).is_static


# ------------------------------------------------------------------------------------------ legacy groups (6.5)


def test_filters_have_priority_over_groups() -> None:
    cohort = parse_cohort({"filters": {"properties": AND(pos("from_filters"))},
                           "groups": [{"properties": [{"key": "from_groups", "value": 1}]}]})
    assert [leaf.key for leaf in cohort.leaves()] == ["from_filters"]


def test_groups_are_used_without_filters() -> None:
    cohort = parse_cohort({"groups": [{"properties": {"plan": "pro"}}, {"action_id": 3, "days": 7}]})
    leaves = list(cohort.leaves())
    assert [leaf.type for leaf in leaves] == ["person", "behavioral"]
    assert leaves[0].operator == "exact"  # dict form: no operator, means exact (6.5)
    assert (leaves[1].key, leaves[1].event_type, leaves[1].time_value) == (3, "actions", 7)
    assert cohort.has_behavioral_leaves()


def test_invalid_group_is_a_400_on_create_and_an_empty_cohort_for_the_engine() -> None:
    error = error_of({"groups": [{"days": 3}]})
    assert (error.detail, error.attr) == ("groups[0]: Cohort group needs properties or action_id or event_id",
                                          "groups")
    stored = parse_cohort({"groups": [{"days": 3}]}, internal=True)
    root = stored.effective_filters()
    assert (root.type, root.values) == ("AND", [])


def test_invalid_group_is_rejected_even_when_filters_win() -> None:
    error = error_of({"filters": {"properties": AND(pos())}, "groups": [{"label": "broken"}]})
    assert error.attr == "groups"


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([{"properties": [{"key": "id", "type": "dynamic-cohort", "value": "0 OR 1=1"}]}],
         "groups[0].properties[0].value: Cohort id must be an integer, got '0 OR 1=1'"),
        ([{"action_id": 1}, {"action_id": 2, "days": -4}], "groups[1]: time_value must be greater than 0"),
        ([{"properties": [{"key": "a", "value": 1}, {"key": "b", "operator": "is_date_before", "value": "then"}]}],
         "groups[0].properties[1]: Invalid date value 'then' for operator 'is_date_before'. Expected a relative "
         "date (e.g., '-7d', '30d') or an ISO 8601 date (e.g., '2024-01-15')."),
    ],
)
def test_converted_groups_are_validated_with_paths_into_groups(groups: list[Any], expected: str) -> None:
    assert error_of({"groups": groups}).detail == expected


def test_injection_through_legacy_groups_fails_on_the_engine_path_too() -> None:
    # conformance 076: a non-integer dynamic-cohort id smuggled through groups is rejected, never interpolated
    groups = [{"properties": [{"key": "id", "type": "dynamic-cohort", "value": "0 OR 1=1"}]}]
    error = error_of({"groups": groups}, internal=True)
    assert error.attr == "groups" and "Cohort id must be an integer, got '0 OR 1=1'" in error.detail


def test_negative_only_legacy_groups_are_rejected_on_create() -> None:
    groups = [{"properties": [{"key": "id", "type": "cohort", "value": 3, "negation": True}]}]
    error = error_of({"groups": groups})
    assert (error.detail, error.attr) == (ROOT_NEGATED, "groups")


def test_effective_filters_of_a_model_built_in_python() -> None:
    cohort = CohortDefinition(groups=[{"event_id": "$pageview", "count": 2, "count_operator": "gte"}])
    (leaf,) = cohort.leaves()
    assert isinstance(leaf, BehavioralFilter)
    assert (leaf.value, leaf.operator, leaf.operator_value, leaf.time_value) == (
        "performed_event_multiple", "gte", 2, 365)


# ----------------------------------------------------------------------------------------------- helpers


def test_referenced_ids_and_behavioral_leaves() -> None:
    data = {"filters": {"properties": OR(
        AND(pos(), {"type": "cohort", "key": "id", "value": "12"}),
        AND({"type": "cohort", "value": 7, "negation": True}, pos()),
    )}}
    cohort = parse_cohort(data)
    assert cohort.referenced_cohort_ids() == {7, 12}
    assert not cohort.has_behavioral_leaves()
    internal = parse_cohort({"filters": {"properties": AND(
        pos(), {"type": "static-cohort", "key": "id", "value": 3}, {"type": "precalculated-cohort", "value": 4},
        {"type": "dynamic-cohort", "value": 5})}}, internal=True)
    assert internal.referenced_cohort_ids() == {3, 4, 5}


def test_internal_parsing_ignores_unknown_keys_and_keeps_object_rules_off() -> None:
    stored = parse_cohort({"id": 3, "name": "n", "team_id": 1, "something_new": True,
                           "query": {"kind": "HogQLQuery"}, "filters": {"properties": AND(pos())}}, internal=True)
    assert stored.id == 3 and stored.query == {"kind": "HogQLQuery"}
    assert parse_cohort({"filters": {}}, internal=True).filters is None  # PostHog: `if self.filters:`
    stored = parse_cohort({"filters": {"properties": {}}}, internal=True)  # PostHog: an empty AND
    assert (stored.effective_filters().type, stored.effective_filters().values) == ("AND", [])
