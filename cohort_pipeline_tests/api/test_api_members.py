"""Static membership (spec 2.4, 7.5), the persons endpoint (JSON pages and CSV export), calculation history and
the list endpoint's options."""

from __future__ import annotations

import csv
import io

import pytest

from cohort_pipeline_tests.api.conftest import (
    NOW,
    P1,
    P2,
    P3,
    P4,
    P5,
    PAGEVIEW_FILTERS,
    PRO_FILTERS,
    recalculate_live_cohorts,
    Q1,
    UNKNOWN_PERSON,
    Api,
    assert_error,
)


def url(cohort_id: int, action: str = "") -> str:
    return f"/api/projects/1/cohorts/{cohort_id}/" + (f"{action}/" if action else "")


@pytest.fixture
def static(api: Api) -> int:
    return api.create({"name": "static", "is_static": True, "_create_static_person_ids": [P1]})["id"]


@pytest.fixture
def dynamic(api: Api) -> int:
    return api.create({"name": "dynamic", "filters": PRO_FILTERS})["id"]


# ---------------------------------------------------------------------------------------------- add persons


def test_add_persons_to_static_cohort(api: Api, static: int) -> None:
    response = api.patch(url(static, "add_persons_to_static_cohort"), json={"person_ids": [P2, P3, UNKNOWN_PERSON]})
    assert response.status_code == 200 and response.json() == {"success": True}
    assert api.store.members(static) == sorted([P1, P2, P3])
    assert api.cohort(static)["count"] == 3
    again = api.patch(url(static, "add_persons_to_static_cohort"), json={"person_ids": [P2]})
    assert again.status_code == 200 and api.cohort(static)["count"] == 3  # idempotent


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"person_ids": P2}, "person_ids must be a list"),
        ({}, "person_ids must be a list"),
        ({"person_ids": []}, "person_ids cannot be empty"),
        ({"person_ids": [P2] * 1001}, "List size exceeds limit"),
        ({"person_ids": [UNKNOWN_PERSON, Q1, 42]}, "No valid users to add to cohort"),
    ],
)
def test_add_persons_errors(api: Api, static: int, body: dict, detail: str) -> None:
    assert_error(api.patch(url(static, "add_persons_to_static_cohort"), json=body), 400, detail)
    assert api.store.members(static) == [P1]


def test_add_persons_to_a_dynamic_cohort_is_refused(api: Api, dynamic: int) -> None:
    response = api.patch(url(dynamic, "add_persons_to_static_cohort"), json={"person_ids": [P2]})
    assert_error(response, 400, "Can only add users to static cohorts")


# ------------------------------------------------------------------------------------------- remove person


def test_remove_person_from_static_cohort_is_idempotent(api: Api, static: int) -> None:
    response = api.patch(url(static, "remove_person_from_static_cohort"), json={"person_id": P1})
    assert response.status_code == 200 and response.json() == {"success": True}
    assert api.store.members(static) == [] and api.cohort(static)["count"] == 0
    assert api.patch(url(static, "remove_person_from_static_cohort"), json={"person_id": P1}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({}, 400, "person_id is required"),
        ({"person_id": ""}, 400, "person_id is required"),
        ({"person_id": 12}, 400, "person_id must be a string"),
        ({"person_id": "not-a-uuid"}, 400, "person_id must be a valid UUID"),
        ({"person_id": UNKNOWN_PERSON}, 404, "Person with this UUID does not exist in the cohort's team"),
        ({"person_id": Q1}, 404, "Person with this UUID does not exist in the cohort's team"),
    ],
)
def test_remove_person_errors(api: Api, static: int, body: dict, status: int, detail: str) -> None:
    assert_error(api.patch(url(static, "remove_person_from_static_cohort"), json=body), status, detail)
    assert api.store.members(static) == [P1]


def test_remove_person_from_a_dynamic_cohort_is_refused(api: Api, dynamic: int) -> None:
    response = api.patch(url(dynamic, "remove_person_from_static_cohort"), json={"person_id": P1})
    assert_error(response, 400, "Can only remove users from static cohorts")


# ---------------------------------------------------------------------------------------------- persons


def test_persons_of_a_calculated_cohort_paginate_newest_first(api: Api) -> None:
    cohort = api.create({"name": "all", "is_static": True, "_create_static_person_ids": [P1, P2, P3, P4, P5]})["id"]
    page = api.get(url(cohort, "persons") + "?limit=2").json()
    assert [p["id"] for p in page["results"]] == [P5, P4]
    assert page["previous"] is None and "offset=2" in page["next"] and "limit=2" in page["next"]
    second = api.get(page["next"].replace("http://testserver", "")).json()
    assert [p["id"] for p in second["results"]] == [P3, P2]
    assert "offset=0" in second["previous"]
    person = next(p for p in api.get(url(cohort, "persons")).json()["results"] if p["id"] == P1)
    assert person == {
        "id": P1, "uuid": P1, "type": "person", "name": "alice@example.com", "distinct_ids": ["d1", "d1-alias"],
        "properties": {"email": "alice@example.com", "plan": "pro", "score": 90},
        "created_at": "2026-01-01T00:00:00Z", "last_seen_at": None, "is_identified": None, "matched_recordings": [],
        "value_at_data_point": None,
    }
    dave = next(p for p in api.get(url(cohort, "persons")).json()["results"] if p["id"] == P4)
    assert dave["name"] == "Dave"


def test_persons_of_a_dynamic_cohort_appear_after_calculation(api: Api, dynamic: int) -> None:
    assert api.get(url(dynamic, "persons")).json() == {"results": [], "next": None, "previous": None}
    recalculate_live_cohorts(api.store, 1, api.data_dir, now=NOW)
    assert [p["id"] for p in api.get(url(dynamic, "persons")).json()["results"]] == [P3, P1]


def test_persons_csv_export(api: Api, static: int) -> None:
    api.patch(url(static, "add_persons_to_static_cohort"), json={"person_ids": [P4]})
    for extra in ({"params": {"format": "csv"}}, {"headers": {"Accept": "text/csv"}}):
        response = api.get(url(static, "persons"), **extra)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["id"] for row in rows] == [P4, P1]
        assert rows[1]["email"] == "alice@example.com" and rows[1]["properties.plan"] == "pro"
        assert rows[1]["distinct_ids.0"] == "d1" and rows[1]["distinct_ids.1"] == "d1-alias"
        assert list(rows[0])[:4] == ["id", "email", "name", "created_at"]


def test_persons_needs_person_read_scope(api: Api, static: int) -> None:
    key = api.new_key("cohort:read")
    assert_error(api.get(url(static, "persons"), key=key), 403, "API key missing required scope 'person:read'",
                 code="permission_denied")
    assert api.get(url(static, "persons"), key=api.new_key("cohort:read", "person:read")).status_code == 200
    assert_error(api.get(url(static, "persons"), key=api.new_key("person:read")), 403,
                 "API key missing required scope 'cohort:read'")


# ------------------------------------------------------------------------------------- calculation history


def test_calculation_history_lists_runs_newest_first(api: Api, dynamic: int) -> None:
    recalculate_live_cohorts(api.store, 1, api.data_dir, now=NOW)
    api.patch(url(dynamic), json={"filters": PAGEVIEW_FILTERS})
    recalculate_live_cohorts(api.store, 1, api.data_dir, now=NOW)
    body = api.get(url(dynamic, "calculation_history")).json()
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    newest, oldest = body["results"]
    assert (newest["version"], newest["count"], newest["filters"]) == (2, 2, PAGEVIEW_FILTERS)
    assert (oldest["version"], oldest["count"]) == (1, 2)
    assert newest["is_completed"] is True and newest["is_successful"] is True and newest["error"] is None
    assert newest["entered"] == 1 and newest["exited"] == 1
    page = api.get(url(dynamic, "calculation_history") + "?limit=1").json()
    assert len(page["results"]) == 1 and page["next"] == "?limit=1&offset=1"


def test_failed_calculation_shows_last_error_message(api: Api, dynamic: int) -> None:
    version = api.store.request_calculation(dynamic)
    api.store.record_failure(dynamic, version, "boom", "timeout")
    body = api.cohort(dynamic)
    assert body["errors_calculating"] == 1
    assert body["last_error_message"] == "The calculation took too long and timed out. Try simplifying the cohort's " \
                                         "criteria."
    run = api.get(url(dynamic, "calculation_history")).json()["results"][0]
    assert run["error"] == "boom" and run["error_code"] == "timeout" and run["is_successful"] is False


# ------------------------------------------------------------------------------------------------ listing


def test_list_filters_and_pagination(api: Api, static: int, dynamic: int) -> None:
    behavioral = api.create({"name": "Visitors", "filters": PAGEVIEW_FILTERS})["id"]
    referencing = api.create({"name": "refs visitors", "filters": {"properties": {"type": "AND", "values": [
        {"type": "cohort", "key": "id", "value": behavioral}]}}})["id"]
    body = api.get("/api/projects/1/cohorts/").json()
    assert [c["id"] for c in body["results"]] == [referencing, behavioral, dynamic, static]
    assert body["count"] == 4 and body["next"] is None
    assert [c["id"] for c in api.get("/api/projects/1/cohorts/?type=static").json()["results"]] == [static]
    assert [c["id"] for c in api.get("/api/projects/1/cohorts/?search=VISIT").json()["results"]] == [
        referencing, behavioral]
    hidden = api.get("/api/projects/1/cohorts/?hide_behavioral_cohorts=true").json()["results"]
    assert [c["id"] for c in hidden] == [dynamic, static]
    basic = api.get("/api/projects/1/cohorts/?basic=true").json()["results"][0]
    assert "filters" not in basic and "query" not in basic and "groups" not in basic and "count" in basic
    page = api.get("/api/projects/1/cohorts/?limit=1&offset=1").json()
    assert [c["id"] for c in page["results"]] == [behavioral]
    assert "offset=2" in page["next"] and "offset=0" in page["previous"]
    assert_error(api.get("/api/projects/1/cohorts/", params={"search": "x" * 201}), 400,
                 "Search query must be 200 characters or fewer.", attr="search")
    assert_error(api.get("/api/projects/1/cohorts/?limit=0"), 400, "Input should be greater than or equal to 1",
                 attr="limit")


def test_list_never_shows_other_projects(api: Api, static: int) -> None:
    api.create({"name": "p2", "filters": PRO_FILTERS}, project_id=2, key=api.key2)
    assert [c["id"] for c in api.get("/api/projects/1/cohorts/").json()["results"]] == [static]
    assert [c["name"] for c in api.get("/api/projects/2/cohorts/", key=api.key2).json()["results"]] == ["p2"]
