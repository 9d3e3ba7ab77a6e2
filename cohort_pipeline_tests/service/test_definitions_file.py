"""The definitions file: a valid file round-trips; every problem is one error naming its place (file, project,
cohort) followed by PostHog's message where the spec gives one (spec sections 2.1-2.3, 6.3, decision 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.service.definitions_file import load_definitions
from cohort_pipeline_tests.service.helpers import (
    SAMPLE_DEFINITIONS,
    UPLOADS,
    absolute_csv_paths,
    cohort_leaf,
    dynamic,
    person_leaf,
    sample_json,
    write_json,
)

PRO = dynamic(3, "Pro users", person_leaf("plan", "exact", "pro"))


def project(*cohorts: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"id": 1, "name": "Acme", **settings, "cohorts": list(cohorts)}


def one_project(*cohorts: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"projects": [project(*cohorts, **settings)]}


def load_error(path: Path) -> CohortValidationError:
    with pytest.raises(CohortValidationError) as caught:
        load_definitions(path)
    return caught.value


# --------------------------------------------------------------------------------------------------------------
# A valid file
# --------------------------------------------------------------------------------------------------------------


def test_the_sample_file_round_trips() -> None:
    raw = sample_json()
    projects = load_definitions(SAMPLE_DEFINITIONS)

    assert [p.id for p in projects] == [1, 2]
    for spec, loaded in zip(raw["projects"], projects, strict=True):
        assert loaded.name == spec["name"]
        assert loaded.timezone == spec["timezone"]
        assert loaded.test_account_filters == spec.get("test_account_filters", [])
        assert loaded.property_definitions == spec.get("property_definitions", {})
        assert [c.id for c in loaded.cohorts] == [c["id"] for c in spec["cohorts"]]
        for cohort_json, cohort in zip(spec["cohorts"], loaded.cohorts, strict=True):
            assert cohort.raw == {k: v for k, v in cohort_json.items() if k != "csv"}  # stored as written
            assert cohort.name == cohort_json["name"]
            assert cohort.definition.id == cohort_json["id"]
            assert cohort.definition.is_static == cohort_json.get("is_static", False)
            if "csv" in cohort_json:
                assert cohort.csv_name == cohort_json["csv"]
                assert cohort.csv == (SAMPLE_DEFINITIONS.parent / cohort_json["csv"]).read_bytes()
            else:
                assert cohort.csv is None and cohort.csv_name is None
    # the references of the sample resolve inside their project
    by_id = {c.id: c for c in projects[0].cohorts}
    assert by_id[8].definition.referenced_cohort_ids() == {1, 4}
    assert by_id[13].definition.referenced_cohort_ids() == {1, 2, 9}


def test_defaults_and_relative_csv_paths(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "ids.csv").write_text("person_id\nabc\n", encoding="utf-8")
    path = write_json(tmp_path / "cohorts.json", one_project(
        PRO, {"id": 4, "name": "List", "is_static": True, "csv": "lists/ids.csv"}))
    [loaded] = load_definitions(path)
    assert (loaded.timezone, loaded.test_account_filters, loaded.property_definitions) == ("UTC", [], {})
    assert loaded.cohorts[1].csv == b"person_id\nabc\n"


def test_an_unnamed_cohort_is_untitled(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", one_project({k: v for k, v in PRO.items() if k != "name"}))
    assert load_definitions(path)[0].cohorts[0].name == "Untitled cohort"


# --------------------------------------------------------------------------------------------------------------
# Every error, with its exact message. {path} is the definitions file, {dir} its folder.
# --------------------------------------------------------------------------------------------------------------

UNKNOWN_OPERATOR = "Unknown operator 'likes' for person filter. Supported operators: exact, is_not, "

CASES: list[tuple[str, Any, str]] = [
    # file structure
    ("unknown top-level key", {"projects": [], "cohorts": []},
     "definitions file {path}: cohorts: Extra inputs are not permitted"),
    ("projects missing", {}, "definitions file {path}: projects: Field required"),
    ("unknown project key", {"projects": [{**project(PRO), "colour": "red"}]},
     "definitions file {path}: projects.0.colour: Extra inputs are not permitted"),
    ("project id is not an integer", {"projects": [{**project(PRO), "id": "1"}]},
     "definitions file {path}: projects.0.id: Input should be a valid integer"),
    ("project id true is not project 1", {"projects": [{**project(PRO), "id": True}]},
     "definitions file {path}: projects.0.id: Input should be a valid integer"),
    ("cohort is not an object", one_project(3),
     "definitions file {path}: projects.0.cohorts.0: Input should be a valid dictionary"),
    ("duplicate project id", {"projects": [project(PRO), {"id": 1, "name": "Other"}]},
     "definitions file {path}: a project id is used twice."),
    # ids
    ("cohort without id", one_project(PRO, {k: v for k, v in PRO.items() if k != "id"} | {"name": "No id"}),
     "project 1, cohorts[1] (No id): every cohort needs an integer 'id'."),
    ("cohort id as text", one_project({**PRO, "id": "3"}),
     "project 1, cohorts[0] (Pro users): every cohort needs an integer 'id'."),
    ("cohort id true", one_project({**PRO, "id": True}),
     "project 1, cohorts[0] (Pro users): every cohort needs an integer 'id'."),
    ("duplicate cohort id", one_project(PRO, {**PRO, "name": "Again"}), "project 1: cohort id 3 is used twice."),
    ("cohort id in two projects", {"projects": [project(PRO), {"id": 2, "name": "B", "cohorts": [PRO]}]},
     "definitions file {path}: cohort id 3 is used in project 1 and project 2 (cohort ids are unique across "
     "projects)."),
    # project settings
    ("unknown timezone", one_project(PRO, timezone="Mars/Olympus"), "project 1: unknown timezone 'Mars/Olympus'."),
    ("bad property type", one_project(PRO, property_definitions={"age": "Integer"}),
     "project 1: property_definitions.age: Unknown property type 'Integer'. Allowed types: String, Numeric, "
     "DateTime, Boolean."),
    ("bad test-account filter", one_project(PRO, test_account_filters=[
        person_leaf("email", "not_icontains", "@acme.com"), person_leaf("email", "likes", "x")]),
     "project 1: test_account_filters[1]: " + UNKNOWN_OPERATOR),
    # actions
    ("action without id", one_project(PRO, actions=[{"name": "Checkout", "steps": []}]),
     "project 1, actions[0]: every action needs an integer 'id'."),
    ("duplicate action id", one_project(PRO, actions=[{"id": 1, "steps": []}, {"id": 1, "steps": []}]),
     "project 1, actions[1]: action id 1 is used twice."),
    ("bad url matching", one_project(PRO, actions=[{"id": 1, "steps": [
        {"event": "$pageview", "url": "/checkout", "url_matching": "fuzzy"}]}]),
     "project 1, actions[0]: Action 1: url_matching must be one of exact, contains, regex, got 'fuzzy'"),
    ("element step", one_project(PRO, actions=[{"id": 1, "steps": [{"event": "$autocapture", "text": "Buy"}]}]),
     "project 1, actions[0]: Action 1: element matching (selector, tag_name, href, text) needs the elements "
     "chain of $autocapture events, which the event data does not carry"),
    # references
    ("cycle between cohorts", one_project(dynamic(1, "A", cohort_leaf(2)), dynamic(2, "B", cohort_leaf(1))),
     "project 1: Cohorts cannot reference other cohorts in a loop. (1 -> 2 -> 1)"),
    ("self-reference", one_project(dynamic(5, "Me", cohort_leaf(5))),
     "project 1: Cohorts cannot reference other cohorts in a loop. (5 -> 5)"),
    ("dangling reference", one_project(PRO, dynamic(4, "Refs nobody", cohort_leaf(3), cohort_leaf(99))),
     "project 1, cohort 4 (Refs nobody): Invalid Cohort ID in filter (no cohort 99 in project 1)"),
    ("reference into another project", {"projects": [project(PRO), {"id": 2, "name": "B", "cohorts": [
        dynamic(7, "Other project's pros", cohort_leaf(3))]}]},
     "project 2, cohort 7 (Other project's pros): Invalid Cohort ID in filter (no cohort 3 in project 2)"),
    # CSV
    ("CSV on a dynamic cohort", one_project({**PRO, "csv": str(UPLOADS / "vip_customers.csv")}),
     "project 1, cohort 3 (Pro users): a CSV can only populate a static cohort (set is_static)."),
    ("missing CSV file", one_project({"id": 9, "name": "VIP", "is_static": True, "csv": "nope.csv"}),
     "project 1, cohort 9 (VIP): cannot read CSV file {dir}/nope.csv: No such file or directory"),
    ("CSV that is not a path", one_project({"id": 9, "name": "VIP", "is_static": True, "csv": None}),
     "project 1, cohort 9 (VIP): 'csv' must be the path of a CSV file (relative to the definitions file), "
     "got null."),
    # the cohort object and its filters (PostHog's messages)
    ("unknown cohort key", one_project({**PRO, "colour": "red"}),
     "project 1, cohort 3 (Pro users): Extra inputs are not permitted (key 'colour')"),
    ("name too long", one_project({**PRO, "name": "n" * 401}),
     f"project 1, cohort 3 ({'n' * 401}): Ensure this field has no more than 400 characters."),
    ("filters without properties", one_project({**PRO, "filters": {}}),
     "project 1, cohort 3 (Pro users): Must contain a 'properties' key with type and values"),
    ("dynamic cohort with a query", one_project({"id": 4, "name": "Q", "query": {"kind": "HogQLQuery"}}),
     "project 1, cohort 4 (Q): Cannot create a dynamic cohort with a query. Set is_static to true."),
    ("unknown operator", one_project(dynamic(4, "Likes pro", person_leaf("plan", "likes", "pro"))),
     "project 1, cohort 4 (Likes pro): filters.properties.values[0]: " + UNKNOWN_OPERATOR),
    ("missing operator", one_project(dynamic(4, "X", {"type": "person", "key": "plan", "value": "pro"})),
     "project 1, cohort 4 (X): filters.properties.values[0]: Missing required keys for person filter: operator"),
    ("unknown leaf type", one_project(dynamic(4, "X", {"type": "persn", "key": "plan", "operator": "exact",
                                                       "value": "pro"})),
     "project 1, cohort 4 (X): filters.properties.values[0]: Unknown filter type 'persn'. Supported types: "
     "behavioral, cohort, person, person_metadata"),
    ("bad date value", one_project(dynamic(4, "X", person_leaf("signup", "is_date_after", "soonish"))),
     "project 1, cohort 4 (X): filters.properties.values[0]: Invalid date value 'soonish' for operator "
     "'is_date_after'. Expected a relative date (e.g., '-7d', '30d') or an ISO 8601 date (e.g., '2024-01-15')."),
    ("bad regex", one_project(dynamic(4, "Bad regex", person_leaf("email", "regex", "(["))),
     "project 1, cohort 4 (Bad regex): filters.properties.values[0]: Invalid regular expression '([' for "
     "operator 'regex'"),
    ("negated leaf alone", one_project(dynamic(4, "Not pro", person_leaf("plan", "exact", "pro", negation=True))),
     "project 1, cohort 4 (Not pro): Top level condition cannot be negated"),
    ("not in a cohort alone", one_project(PRO, dynamic(4, "Not pro users", cohort_leaf(3, negation=True))),
     "project 1, cohort 4 (Not pro users): Top level condition cannot be negated"),
    ("root OR mixing positive and negated", one_project(PRO, dynamic(
        4, "Mixed", cohort_leaf(3), person_leaf("plan", "exact", "free", negation=True), group="OR")),
     "project 1, cohort 4 (Mixed): Top level condition cannot be negated"),
]

#: messages that end with a list or a regex-engine explanation: the test checks the start
PREFIX_ONLY = {"bad test-account filter", "unknown operator", "bad regex"}


@pytest.mark.parametrize(("spec", "expected"), [(spec, msg) for _, spec, msg in CASES],
                         ids=[case for case, _, _ in CASES])
def test_every_problem_is_one_error_naming_its_place(
    tmp_path: Path, request: pytest.FixtureRequest, spec: Any, expected: str
) -> None:
    path = write_json(tmp_path / "cohorts.json", spec)
    error = load_error(path)
    expected = expected.format(path=path, dir=tmp_path)
    # the message a user sees (CLI, Dagster) is the place followed by the problem, nothing in front
    if request.node.callspec.id in PREFIX_ONLY:
        assert str(error).startswith(expected), str(error)
    else:
        assert str(error) == expected
    assert error.detail == str(error)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "cohorts.json"
    path.write_text('{"projects": [', encoding="utf-8")  # 14 characters, then the end of the file
    assert str(load_error(path)) == (
        f"definitions file {path} is not valid JSON: Expecting value: line 1 column 15 (char 14)")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cohorts.json"
    path.write_bytes(b'{"projects": [{"id": 1, "name": "\xff"}]}')
    assert str(load_error(path)).startswith(
        f"definitions file {path} is not valid JSON: 'utf-8' codec can't decode byte 0xff")


@pytest.mark.parametrize(("name", "reason"), [("missing.json", "No such file or directory"),
                                              (".", "Is a directory")])
def test_unreadable_file(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / name
    assert str(load_error(path)) == f"cannot read definitions file {path}: {reason}"


def test_a_problem_anywhere_rejects_the_whole_file(tmp_path: Path) -> None:
    """Validation is all or nothing: a broken second project means no project is returned at all."""
    spec = absolute_csv_paths(sample_json())
    spec["projects"][1]["cohorts"][0]["filters"]["properties"]["values"][0]["operator"] = "likes"
    path = write_json(tmp_path / "cohorts.json", spec)
    assert str(load_error(path)).startswith("project 2, cohort 101 (Free plan): filters.properties.values[0]: "
                                            "Unknown operator 'likes'")


def test_test_account_filters_of_other_types_are_kept_unvalidated(tmp_path: Path) -> None:
    """Only person filters are applied by the engine (decision 6); PostHog's event filters may stay in the file."""
    filters = [{"type": "event", "key": "$host", "operator": "not_icontains", "value": "localhost"}]
    path = write_json(tmp_path / "c.json", one_project(PRO, test_account_filters=filters))
    assert load_definitions(path)[0].test_account_filters == filters


def test_the_error_is_raised_for_the_first_problem_in_file_order(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", one_project(
        dynamic(4, "First", person_leaf("plan", "likes", "x")),
        dynamic(5, "Second", person_leaf("plan", "exact", "x", negation=True))))
    assert str(load_error(path)).startswith("project 1, cohort 4 (First): ")
