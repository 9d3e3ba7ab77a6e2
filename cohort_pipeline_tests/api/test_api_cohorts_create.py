"""POST /api/projects/{id}/cohorts/: every way to create a cohort (spec 7.1) and every 400 of spec 2.1 / 2.2."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cohort_pipeline_tests.api.conftest import (
    P1,
    P2,
    P3,
    P4,
    PAGEVIEW_FILTERS,
    PRO_FILTERS,
    Q1,
    UNKNOWN_PERSON,
    Api,
    assert_error,
)

COHORT_FIELDS = {
    "id", "name", "description", "filters", "query", "groups", "is_static", "count", "is_calculating", "created_by",
    "created_at", "last_calculation", "cohort_type", "version", "pending_version", "errors_calculating",
    "last_error_message", "deleted",
}
URL = "/api/projects/1/cohorts/"


def members(api: Api, cohort_id: int) -> list[str]:
    return api.store.members(cohort_id)


# ------------------------------------------------------------------------------------------------ dynamic


def test_dynamic_cohort_is_queued_for_calculation_with_posthogs_shape(api: Api) -> None:
    body = api.create({"name": "Pro users", "filters": PRO_FILTERS})
    assert COHORT_FIELDS <= set(body)
    assert body["is_static"] is False and body["deleted"] is False
    assert body["is_calculating"] is True and body["pending_version"] == 1
    assert body["version"] is None and body["count"] is None and body["last_calculation"] is None
    assert body["cohort_type"] == "realtime"
    assert body["filters"] == PRO_FILTERS
    assert body["created_by"]["first_name"] == "tester"
    assert body["created_at"].endswith("Z")
    assert "static_import" not in body
    assert api.cohort(body["id"]) == body


def test_behavioral_sequence_cohort_is_not_realtime(api: Api) -> None:
    sequence = {"properties": {"type": "AND", "values": [
        {"type": "behavioral", "key": "$pageview", "event_type": "events", "value": "performed_event_sequence",
         "time_value": 30, "time_interval": "day", "seq_event": "purchase", "seq_event_type": "events",
         "seq_time_value": 3, "seq_time_interval": "day"}]}}
    assert api.create({"name": "seq", "filters": sequence})["cohort_type"] is None
    assert api.create({"name": "pageview", "filters": PAGEVIEW_FILTERS})["cohort_type"] == "realtime"


def test_realtime_follows_the_referenced_cohorts_type(api: Api) -> None:
    realtime = api.create({"name": "rt", "filters": PRO_FILTERS})
    metadata = api.create({"name": "md", "filters": {"properties": {"type": "AND", "values": [
        {"type": "person_metadata", "key": "created_at", "operator": "is_date_after", "value": "2026-01-01"}]}}})
    assert metadata["cohort_type"] is None
    ref = {"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": realtime["id"]}]}}
    assert api.create({"name": "ref rt", "filters": ref})["cohort_type"] == "realtime"
    ref["properties"]["values"][0]["value"] = metadata["id"]
    assert api.create({"name": "ref md", "filters": ref})["cohort_type"] is None


def test_legacy_groups_are_answered_as_converted_filters(api: Api) -> None:
    body = api.create({"name": "legacy", "groups": [{"properties": [{"key": "plan", "value": "pro"}]},
                                                    {"action_id": 3, "days": 7}]})
    assert body["groups"][0]["properties"] == [{"key": "plan", "value": "pro"}]
    assert body["filters"] == {"properties": {"type": "OR", "values": [
        {"type": "AND", "values": [{"key": "plan", "value": "pro", "type": "person"}]},
        {"type": "AND", "values": [{"type": "behavioral", "key": 3, "event_type": "actions",
                                    "value": "performed_event", "time_interval": "day", "time_value": 7,
                                    "operator_value": 0}]}]}}
    assert body["is_calculating"] is True


def test_read_only_fields_sent_back_are_ignored(api: Api) -> None:
    body = api.create({"name": "echo", "filters": PRO_FILTERS, "count": 99, "version": 7, "is_calculating": False,
                       "created_at": "2020-01-01T00:00:00Z", "last_error_message": "x"})
    assert body["count"] is None and body["version"] is None and body["pending_version"] == 1


# ------------------------------------------------------------------------------------------------- static


def test_static_cohort_from_a_multipart_csv_reports_matched_and_unmatched(api: Api) -> None:
    response = api.post(URL, data={"name": "CSV", "is_static": "true", "filters": json.dumps({"properties": {}})},
                        files={"csv": ("ids.csv", b"d1\nd1-alias\nd3\nnobody\n", "text/csv")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["is_static"] is True and body["count"] == 2 and body["is_calculating"] is False
    assert body["version"] == 1 and body["last_calculation"] is not None
    assert body["filters"] == {"properties": {}}
    assert body["static_import"] == {
        "source": "csv", "id_type": "distinct_id", "rows_total": 4, "rows_skipped": 0, "ids_submitted": 4,
        "persons_matched": 2, "persons_added": 2, "unmatched_count": 1, "unmatched_sample": ["nobody"],
    }
    assert members(api, body["id"]) == sorted([P1, P3])


def test_csv_person_id_and_email_columns(api: Api) -> None:
    response = api.post(URL, data={"name": "by email", "is_static": "true"},
                        files={"csv": ("e.csv", b"email\nalice@example.com\ncarol@gmail.com\n")})
    assert response.status_code == 201, response.text
    assert members(api, response.json()["id"]) == sorted([P1, P3])
    response = api.post(URL, data={"name": "by id", "is_static": "true"},
                        files={"csv": ("p.csv", f"person_id,other\n{P2},x\n{UNKNOWN_PERSON},y\n".encode())})
    assert response.status_code == 201, response.text
    assert response.json()["static_import"]["id_type"] == "person_id"
    assert members(api, response.json()["id"]) == [P2]


def test_csv_distinct_ids_resolve_within_the_project_only(api: Api) -> None:
    """``d1`` exists in both projects: each project's upload resolves it to its own person."""
    upload = {"csv": ("ids.csv", b"d1\n")}
    one = api.post(URL, data={"name": "p1", "is_static": "true"}, files=upload).json()
    two = api.post("/api/projects/2/cohorts/", data={"name": "p2", "is_static": "true"}, files=upload,
                   key=api.key2).json()
    assert members(api, one["id"]) == [P1]
    assert members(api, two["id"]) == [Q1]


def test_static_cohort_from_person_ids(api: Api) -> None:
    body = api.create({"name": "beta", "is_static": True, "_create_static_person_ids": [P1, P2, UNKNOWN_PERSON, Q1]})
    assert body["count"] == 2
    assert body["static_import"]["unmatched_count"] == 2
    assert members(api, body["id"]) == sorted([P1, P2])


def test_static_cohort_from_csv_and_person_ids_together(api: Api) -> None:
    response = api.post(URL, data={"name": "both", "is_static": "true", "_create_static_person_ids": [P4]},
                        files={"csv": ("ids.csv", b"d2\n")})
    assert response.status_code == 201, response.text
    assert response.json()["static_import"]["source"] == "csv+person_ids"
    assert members(api, response.json()["id"]) == sorted([P2, P4])


def test_static_cohort_from_a_hogql_query(api: Api) -> None:
    body = api.create({"name": "Top", "is_static": True, "query": {
        "kind": "HogQLQuery",
        "query": "SELECT person_id FROM events WHERE properties.$browser = 'Chrome' GROUP BY person_id "
                 "ORDER BY count() DESC LIMIT 100"}})
    assert body["count"] == 2 and body["static_import"]["source"] == "query"
    assert body["query"]["kind"] == "HogQLQuery"
    assert members(api, body["id"]) == sorted([P1, P4])


def test_static_cohort_from_an_actors_query(api: Api) -> None:
    body = api.create({"name": "actors", "is_static": True, "query": {
        "kind": "ActorsQuery", "select": ["id"],
        "properties": [{"type": "person", "key": "plan", "value": "pro"},
                       {"type": "person", "key": "score", "operator": "gt", "value": 60}]}})
    assert members(api, body["id"]) == [P1]
    searched = api.create({"name": "search", "is_static": True, "query": {"kind": "ActorsQuery", "search": "GMAIL"}})
    assert members(api, searched["id"]) == [P3]


def test_static_cohort_snapshot_of_criteria(api: Api) -> None:
    body = api.create({"name": "snapshot", "is_static": True, "filters": PAGEVIEW_FILTERS})
    assert body["is_static"] is True and body["is_calculating"] is False
    assert body["static_import"]["source"] == "criteria"
    assert members(api, body["id"]) == sorted([P1, P2])


def test_static_cohort_with_explicit_empty_person_ids_is_empty(api: Api) -> None:
    body = api.create({"name": "empty", "is_static": True, "_create_static_person_ids": []})
    assert body["count"] == 0 and body["static_import"]["source"] == "empty"


def test_project_without_data_folder_matches_nobody(api: Api) -> None:
    key = api.new_key("*", project_id=3)
    response = api.post("/api/projects/3/cohorts/", data={"name": "x", "is_static": "true"},
                        files={"csv": ("i.csv", b"d1\n")}, key=key)
    assert response.status_code == 201, response.text
    assert response.json()["count"] == 0


# ----------------------------------------------------------------------------------------- 400s (2.1, 2.2)

MISSING_VALUE = {"properties": {"type": "AND", "values": [{"type": "person", "key": "plan", "operator": "exact"}]}}


@pytest.mark.parametrize(
    ("body", "detail", "attr"),
    [
        ({"name": "x" * 401}, "Ensure this field has no more than 400 characters.", "name"),
        ({"description": "x" * 1001}, "Ensure this field has no more than 1000 characters.", "description"),
        ({"is_static": True, "query": "SELECT 1"}, "Query must be a dictionary.", "query"),
        ({"is_static": True, "query": {"kind": "EventsQuery"}}, "Query must be an ActorsQuery or HogQLQuery. Got: "
                                                                 "EventsQuery", "query"),
        ({"filters": {"values": []}}, "Must contain a 'properties' key with type and values", "filters"),
        ({"filters": "nope"}, "Must contain a 'properties' key with type and values", "filters"),
        ({"filters": MISSING_VALUE}, "filters.properties.values[0]: Missing required keys for person filter: value",
         "filters"),
        ({"filters": {"properties": {"type": "AND", "values": [{"type": "person", "key": "plan", "value": "x"}]}}},
         "filters.properties.values[0]: Missing required keys for person filter: operator", "filters"),
        ({"filters": {"properties": {"type": "AND", "values": [
            {"type": "behavioral", "key": "$pageview", "value": "performed_event", "time_value": 1,
             "time_interval": "day"}]}}},
         "filters.properties.values[0]: Missing required keys for behavioral filter: event_type", "filters"),
        ({"filters": {"properties": {"type": "AND", "values": [
            {"type": "person", "key": "d", "operator": "is_date_after", "value": "yesterday-ish"}]}}},
         "filters.properties.values[0]: Invalid date value 'yesterday-ish' for operator 'is_date_after'. "
         "Expected a relative date (e.g., '-7d', '30d') or an ISO 8601 date (e.g., '2024-01-15').", "filters"),
        ({"filters": {"properties": {"type": "AND", "values": [
            {"type": "person_metadata", "key": "email", "operator": "exact", "value": "x"}]}}},
         "filters.properties.values[0]: Unsupported person_metadata key 'email'. Allowed keys: created_at.",
         "filters"),
        ({"filters": {"properties": {"type": "XOR", "values": []}}}, None, "filters"),
        ({"filters": {"properties": {"type": "AND", "values": [{"type": "person", "key": "a", "operator": "exact",
                                                                 "value": 1, "extra": True}]}}},
         "filters.properties.values[0]: Extra inputs are not permitted (key 'extra')", "filters"),
        ({"filters": PRO_FILTERS, "cohort_type": "realtime"},
         "Cohort type 'realtime' does not match the filters. Expected type: 'person_property'", "cohort_type"),
        ({"filters": PRO_FILTERS, "cohort_type": "nonsense"}, '"nonsense" is not a valid choice.', "cohort_type"),
        ({"filters": {"properties": {"type": "AND", "values": []}}, "cohort_type": "behavioral"},
         "Cannot determine type: no valid filters found", "cohort_type"),
        ({"filters": {"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": 424242}]}},
          "cohort_type": "person_property"}, "Referenced cohort 424242 not found", "cohort_type"),
        ({"filters": {"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": 0}]}},
          "cohort_type": "person_property"}, "Cohort filter has no value", "cohort_type"),
        ({"filters": {"properties": {"type": "AND", "values": [
            {"type": "person_metadata", "key": "created_at", "operator": "is_set"}]}},
          "cohort_type": "person_property"}, "Unknown property type: person_metadata", "cohort_type"),
        ({"is_static": True, "query": {"kind": "HogQLQuery", "query": "SELECT id FROM persons"},
          "filters": PRO_FILTERS}, "Cannot set both query and filters at the same time.", None),
        ({"query": {"kind": "HogQLQuery", "query": "SELECT id FROM persons"}},
         "Cannot create a dynamic cohort with a query. Set is_static to true.", None),
        ({"is_static": True}, "Invalid source for static cohort. Requires criteria, a csv, feature flag, existing "
                              "cohort or query.", None),
        ({"filters": {"properties": {"type": "AND", "values": [
            {"type": "person", "key": "plan", "operator": "exact", "value": "pro", "negation": True}]}}},
         "Top level condition cannot be negated", "filters"),
        ({"groups": [{"label": "no source"}]}, "groups[0]: Cohort group needs properties or action_id or event_id",
         "groups"),
        ({"name": "x", "surprise": 1}, "Extra inputs are not permitted (key 'surprise')", "surprise"),
        ({"name": 12}, None, "name"),
    ],
)
def test_invalid_create_is_a_400_and_writes_nothing(api: Api, body: dict[str, Any], detail: str | None,
                                                    attr: str | None) -> None:
    response = api.post(URL, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "validation_error" and error["attr"] == attr
    if detail is not None:
        assert error["detail"] == detail
    assert api.store.list_cohorts(1, include_deleted=True) == []


def test_unknown_operator_is_a_400(api: Api) -> None:
    bad = {"properties": {"type": "AND", "values": [{"type": "person", "key": "a", "operator": "approx", "value": 1}]}}
    response = api.post(URL, json={"filters": bad})
    assert response.status_code == 400
    assert "Unknown operator 'approx'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "CSV file is empty. Please upload a CSV file with at least one row of data."),
        (b"\xff\xfe\x00d", "CSV file encoding is not supported. Please save your file as UTF-8 and try again."),
        (b"name,age\nx,1\n", "Multi-column CSV must contain at least one column with a supported ID header: "
                             "'person_id', 'Person .id' (PostHog export format), 'distinct_id', 'distinct-id', or "
                             "'email'. Found columns: name, age"),
        (b"person_id\n\n", "CSV file contains no valid person IDs, distinct IDs, or email addresses. Please ensure "
                           "your file has data rows with person IDs, distinct IDs, or email addresses."),
        (b"a\x00b\n", "CSV file format is invalid. Please check your file format and try again."),
    ],
)
def test_csv_errors_use_posthogs_messages(api: Api, content: bytes, detail: str) -> None:
    response = api.post(URL, data={"name": "bad", "is_static": "true"}, files={"csv": ("x.csv", content)})
    body = assert_error(response, 400, detail, attr="csv", type_="validation_error")
    assert body["csv"] == [detail]
    assert api.store.list_cohorts(1, include_deleted=True) == []


def test_csv_for_a_dynamic_cohort_is_refused(api: Api) -> None:
    response = api.post(URL, data={"name": "dyn", "filters": json.dumps(PRO_FILTERS)},
                        files={"csv": ("x.csv", b"d1\n")})
    assert_error(response, 400, "A CSV file can only populate a static cohort (set is_static to true).", attr="csv")


@pytest.mark.parametrize(
    ("data", "detail", "attr"),
    [
        ({"name": "x", "is_static": "maybe"}, "Must be a valid boolean.", "is_static"),
        ({"name": "x", "is_static": "true", "filters": "{not json"}, "Value must be valid JSON.", "filters"),
        ({"name": "x", "is_static": "true", "csv": "not-a-file"},
         "The submitted data was not a file. Check the encoding type on the form.", "csv"),
    ],
)
def test_multipart_field_errors(api: Api, data: dict[str, str], detail: str, attr: str) -> None:
    response = api.post(URL, data=data, files={"other": ("o.txt", b"x")} if attr == "other" else None)
    assert_error(response, 400, detail, attr=attr)


def test_multipart_files_only_under_csv(api: Api) -> None:
    response = api.post(URL, data={"name": "x", "is_static": "true"},
                        files={"csv": ("a.csv", b"d1\n"), "extra": ("b.csv", b"d2\n")})
    assert response.status_code == 400
    assert api.store.list_cohorts(1, include_deleted=True) == []


def test_url_encoded_form_creates_a_dynamic_cohort(api: Api) -> None:
    response = api.post(URL, data={"name": "form", "filters": json.dumps(PRO_FILTERS)})
    assert response.status_code == 201, response.text
    assert response.json()["filters"] == PRO_FILTERS


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("DROP TABLE persons", "Only SELECT queries are allowed"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "Table functions are not allowed"),
        ("SELECT id FROM users", "Unknown table 'users'"),
        ("SELECT 1", "Could not find a person_id, actor_id, id, or distinct_id column in the query"),
        ("SELECT id FROM persons; SELECT id FROM persons", "Only a single SELECT statement is allowed"),
        ("SELECT getenv('HOME') AS id FROM persons", "Function getenv() is not allowed"),
        ("SELECT id FROM persons WHERE", "Could not parse the query"),
        ("SELECT id FROM persons WHERE properties.score > 'high'", "The query failed"),
    ],
)
def test_disallowed_queries_are_a_400_saying_what(api: Api, query: str, fragment: str) -> None:
    response = api.post(URL, json={"name": "q", "is_static": True, "query": {"kind": "HogQLQuery", "query": query}})
    assert response.status_code == 400, response.text
    assert response.json()["attr"] == "query"
    assert fragment in response.json()["detail"]
    assert api.store.list_cohorts(1, include_deleted=True) == []


def test_actors_query_rules(api: Api) -> None:
    source = {"kind": "ActorsQuery", "source": {"kind": "TrendsQuery"}}
    response = api.post(URL, json={"name": "a", "is_static": True, "query": source})
    assert response.status_code == 400 and "source" in response.json()["detail"]
    events = {"kind": "ActorsQuery", "properties": [{"type": "event", "key": "$browser", "value": "x"}]}
    response = api.post(URL, json={"name": "a", "is_static": True, "query": events})
    assert response.status_code == 400 and "person, person_metadata and cohort" in response.json()["detail"]
    unknown = {"kind": "HogQLQuery", "query": "SELECT id FROM persons", "surprise": 1}
    response = api.post(URL, json={"name": "a", "is_static": True, "query": unknown})
    assert_error(response, 400, "HogQLQuery has unsupported key 'surprise'", attr="query")


def test_snapshot_referencing_another_projects_cohort_matches_nobody(api: Api) -> None:
    other = api.create({"name": "p2 static", "is_static": True, "_create_static_person_ids": [Q1]}, project_id=2,
                       key=api.key2)
    ref = {"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": other["id"]}]}}
    body = api.create({"name": "snap", "is_static": True, "filters": ref})
    assert body["count"] == 0


def test_static_cohort_reads_persons_of_referenced_static_cohorts(api: Api) -> None:
    base = api.create({"name": "base", "is_static": True, "_create_static_person_ids": [P1, P3]})
    ref = {"properties": {"type": "AND", "values": [
        {"type": "cohort", "key": "id", "value": base["id"]},
        {"type": "person", "key": "email", "operator": "icontains", "value": "gmail"}]}}
    body = api.create({"name": "snap", "is_static": True, "filters": ref})
    assert members(api, body["id"]) == [P3]
