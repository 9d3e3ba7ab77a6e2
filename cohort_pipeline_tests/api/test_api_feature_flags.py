"""The minimal feature-flag registry: its endpoint and the flag-side rule of spec 8.2."""

from __future__ import annotations

from typing import Any

import pytest

from cohort_pipeline_tests.api.conftest import PAGEVIEW_FILTERS, PRO_FILTERS, Api, assert_error

URL = "/api/projects/1/feature_flags/"


def targeting(*cohort_ids: Any) -> dict[str, Any]:
    return {"groups": [{"properties": [{"type": "cohort", "key": "id", "value": cid} for cid in cohort_ids],
                        "rollout_percentage": 50}]}


def test_create_read_update_list_and_soft_delete(api: Api) -> None:
    cohort = api.create({"name": "pro", "filters": PRO_FILTERS})
    body = {"key": "new-checkout_v2", "name": "New checkout", "filters": targeting(cohort["id"])}
    response = api.post(URL, json=body)
    assert response.status_code == 201, response.text
    flag = response.json()
    assert flag["key"] == "new-checkout_v2" and flag["active"] is True and flag["deleted"] is False
    assert flag["filters"] == targeting(cohort["id"]) and flag["created_by"]["first_name"] == "tester"
    assert api.get(f"{URL}{flag['id']}/").json() == flag
    updated = api.patch(f"{URL}{flag['id']}/", json={"active": False, "name": "Checkout"}).json()
    assert updated["active"] is False and updated["name"] == "Checkout"
    assert api.get(URL).json()["count"] == 1
    assert api.patch(f"{URL}{flag['id']}/", json={"deleted": True}).json()["deleted"] is True
    assert api.get(URL).json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert_error(api.request("DELETE", f"{URL}{flag['id']}/"), 405, 'Method "DELETE" not allowed.')
    # the key is free again once the flag is deleted
    assert api.post(URL, json={"key": "new-checkout_v2"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "detail", "attr", "code"),
    [
        ({}, "This field is required.", "key", "required"),
        ({"key": "has space"}, "Only letters, numbers, hyphens (-) & underscores (_) are allowed.", "key", None),
        ({"key": "ok", "active": "yes"}, "Must be a valid boolean.", "active", None),
        ({"key": "ok", "filters": []}, "Must be a JSON object.", "filters", None),
        ({"key": "ok", "filters": {"groups": {}}}, "filters.groups must be a list of condition groups", "filters",
         None),
        ({"key": "ok", "filters": targeting(99999)}, "Cohort with id 99999 does not exist", "filters",
         "cohort_does_not_exist"),
        ({"key": "ok", "owner": "me"}, "Extra inputs are not permitted (key 'owner')", "owner", None),
    ],
)
def test_invalid_flags(api: Api, body: dict[str, Any], detail: str, attr: str, code: str | None) -> None:
    assert_error(api.post(URL, json=body), 400, detail, attr=attr, code=code)
    assert api.store.list_feature_flags(1, include_deleted=True) == []


def test_duplicate_keys_are_refused(api: Api) -> None:
    assert api.post(URL, json={"key": "beta"}).status_code == 201
    assert_error(api.post(URL, json={"key": "beta"}), 400, "There is already a feature flag with this key.",
                 attr="key", code="unique")


def test_flags_cannot_target_behavioral_cohorts_even_through_references(api: Api) -> None:
    behavioral = api.create({"name": "Visitors", "filters": PAGEVIEW_FILTERS})
    wrapper = api.create({"name": "wrapper", "filters": {"properties": {"type": "AND", "values": [
        {"type": "person", "key": "plan", "operator": "exact", "value": "pro"},
        {"type": "cohort", "key": "id", "value": behavioral["id"]}]}}})
    for target in (behavioral["id"], wrapper["id"], str(wrapper["id"])):
        assert_error(api.post(URL, json={"key": "f", "filters": targeting(target)}), 400,
                     "Cohort 'Visitors' with filters on events cannot be used in feature flags.", attr="filters",
                     code="behavioral_cohort_found")
    snapshot = api.create({"name": "snap", "is_static": True, "filters": PAGEVIEW_FILTERS})
    assert api.post(URL, json={"key": "static-ok", "filters": targeting(snapshot["id"])}).status_code == 201


def test_flags_cannot_target_another_projects_cohort(api: Api) -> None:
    other = api.create({"name": "p2", "filters": PRO_FILTERS}, project_id=2, key=api.key2)
    assert_error(api.post(URL, json={"key": "f", "filters": targeting(other["id"])}), 400,
                 f"Cohort with id {other['id']} does not exist", attr="filters")


def test_flag_update_is_checked_and_isolated(api: Api) -> None:
    behavioral = api.create({"name": "Visitors", "filters": PAGEVIEW_FILTERS})
    flag = api.post(URL, json={"key": "f"}).json()
    assert_error(api.patch(f"{URL}{flag['id']}/", json={"filters": targeting(behavioral["id"])}), 400,
                 "Cohort 'Visitors' with filters on events cannot be used in feature flags.", attr="filters")
    assert api.get(f"{URL}{flag['id']}/").json()["filters"] == {"groups": []}
    assert_error(api.get(f"/api/projects/2/feature_flags/{flag['id']}/", key=api.key2), 404, "Not found.")
    assert_error(api.patch(f"/api/projects/2/feature_flags/{flag['id']}/", json={"active": False}, key=api.key2),
                 404, "Not found.")
