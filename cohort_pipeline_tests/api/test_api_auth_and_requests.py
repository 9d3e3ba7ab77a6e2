"""Authentication (401), scopes (403), project isolation (404) and malformed requests: bad JSON, content types,
oversize bodies, unknown routes and methods. Every refusal uses PostHog's body and writes nothing."""

from __future__ import annotations

import json

import pytest

from cohort_pipeline_tests.api.conftest import P1, PRO_FILTERS, Api, assert_error, make_app

URL = "/api/projects/1/cohorts/"
INVALID_KEY = "Personal API key found in request Authorization header is invalid."


# ------------------------------------------------------------------------------------------------------ 401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
def test_missing_key_is_401(api: Api, headers: dict[str, str]) -> None:
    response = api.client.get(URL, headers=headers)
    assert_error(response, 401, "Authentication credentials were not provided.", code="not_authenticated",
                 type_="authentication_error")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("key", ["phx_not-a-real-key", "nonsense", "phx_" + "a" * 43])
def test_unknown_key_is_401(api: Api, key: str) -> None:
    response = api.client.get(URL, headers={"Authorization": f"Bearer {key}"})
    assert_error(response, 401, INVALID_KEY, code="authentication_failed", type_="authentication_error")


def test_revoked_key_is_401(api: Api) -> None:
    record, key = api.store.create_api_key(1, ["*"])
    assert api.get(URL, key=key).status_code == 200
    api.store.revoke_api_key(record.id)
    assert_error(api.get(URL, key=key), 401, INVALID_KEY)


def test_a_long_key_label_is_shortened_for_created_by(api: Api) -> None:
    key = api.store.create_api_key(1, ["*"], label="L" * 400)[1]
    body = api.post(URL, json={"name": "x", "filters": PRO_FILTERS}, key=key).json()
    assert body["created_by"]["first_name"] == "L" * 255


def test_authentication_comes_before_everything_else(api: Api) -> None:
    assert api.client.post(URL, content=b"{bad").status_code == 401
    assert api.client.delete(URL + "1/").status_code == 401
    assert api.client.get("/api/projects/999/cohorts/").status_code == 401


# ------------------------------------------------------------------------------------------------------ 403


@pytest.mark.parametrize(
    ("scopes", "method", "path", "missing"),
    [
        (["cohort:write"], "GET", URL, None),  # write includes read
        (["person:read"], "GET", URL, "cohort:read"),
        (["cohort:read"], "POST", URL, "cohort:write"),
        (["cohort:read"], "PATCH", URL + "{id}/", "cohort:write"),
        (["cohort:read"], "PUT", URL + "{id}/", "cohort:write"),
        (["cohort:read"], "DELETE", URL + "{id}/", "cohort:write"),
        (["cohort:read"], "PATCH", URL + "{id}/add_persons_to_static_cohort/", "cohort:write"),
        (["cohort:read"], "PATCH", URL + "{id}/remove_person_from_static_cohort/", "cohort:write"),
        (["person:read"], "GET", URL + "{id}/calculation_history/", "cohort:read"),
        (["cohort:read"], "GET", URL + "{id}/", None),
        (["cohort:read"], "GET", "/api/projects/1/feature_flags/", "feature_flag:read"),
        (["feature_flag:read"], "POST", "/api/projects/1/feature_flags/", "feature_flag:write"),
    ],
)
def test_scopes(api: Api, scopes: list[str], method: str, path: str, missing: str | None) -> None:
    cohort = api.create({"name": "s", "is_static": True, "_create_static_person_ids": [P1]})
    before = api.store.list_cohorts(1, include_deleted=True)
    response = api.request(method, path.format(id=cohort["id"]), key=api.new_key(*scopes), json={"name": "changed"})
    if missing is None:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, 403, f"API key missing required scope '{missing}'", code="permission_denied",
                     type_="authentication_error")
        assert api.store.list_cohorts(1, include_deleted=True) == before


# ------------------------------------------------------------------------------------------- isolation (404)


def test_a_key_only_reaches_its_own_project(api: Api) -> None:
    mine = api.create({"name": "mine", "filters": PRO_FILTERS})
    theirs = api.create({"name": "theirs", "filters": PRO_FILTERS}, project_id=2, key=api.key2)
    for path in ("/api/projects/2/cohorts/", f"/api/projects/2/cohorts/{theirs['id']}/",
                 f"/api/projects/2/cohorts/{theirs['id']}/persons/", "/api/projects/2/feature_flags/",
                 "/api/projects/424242/cohorts/"):
        assert_error(api.get(path), 404, "Not found.", code="not_found", type_="invalid_request")
    assert_error(api.post("/api/projects/2/cohorts/", json={"name": "x", "filters": PRO_FILTERS}), 404, "Not found.")
    for action, body in (("add_persons_to_static_cohort", {"person_ids": [P1]}),
                         ("remove_person_from_static_cohort", {"person_id": P1}), ("", {"name": "x"})):
        path = f"/api/projects/1/cohorts/{theirs['id']}/" + (f"{action}/" if action else "")
        assert_error(api.patch(path, json=body), 404, "Not found.")
    assert_error(api.get(f"/api/projects/1/cohorts/{theirs['id']}/calculation_history/"), 404, "Not found.")
    assert api.store.list_cohorts(2) == [api.store.get_cohort(2, theirs["id"])]
    assert api.get(f"/api/projects/1/cohorts/{mine['id']}/").status_code == 200


@pytest.mark.parametrize("cohort_id", ["0", "-1", "abc", str(2**64), "1.5"])
def test_impossible_ids_are_not_found(api: Api, cohort_id: str) -> None:
    assert_error(api.get(f"{URL}{cohort_id}/"), 404, "Not found.")


# ---------------------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{bad", "JSON parse error - "),
        (b'{"name": NaN}', "JSON parse error - Out of range float values are not JSON compliant: NaN"),
        (b'{"name": "\xff"}', "JSON parse error - "),
        (b"[" * 100 + b"]" * 100, "JSON parse error - nested more than 64 levels deep"),
    ],
)
def test_malformed_json_is_a_parse_error(api: Api, content: bytes, fragment: str) -> None:
    response = api.post(URL, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "invalid_request" and body["code"] == "parse_error"
    assert body["detail"].startswith(fragment)
    assert api.store.list_cohorts(1, include_deleted=True) == []


@pytest.mark.parametrize(("content", "kind"), [(b"[1, 2]", "list"), (b'"text"', "str"), (b"3", "int")])
def test_body_must_be_an_object(api: Api, content: bytes, kind: str) -> None:
    response = api.post(URL, content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, f"Invalid data. Expected a dictionary, but got {kind}.")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/csv"])
def test_unsupported_content_types_are_415(api: Api, content_type: str) -> None:
    response = api.post(URL, content=b"name=x", headers={"Content-Type": content_type})
    assert_error(response, 415, f'Unsupported media type "{content_type}" in request.',
                 code="unsupported_media_type")


def test_deeply_nested_filters_are_refused(api: Api) -> None:
    group: dict = {"type": "person", "key": "plan", "operator": "exact", "value": "pro"}
    for _ in range(40):
        group = {"type": "AND", "values": [group]}
    response = api.post(URL, content=json.dumps({"filters": {"properties": group}}),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "nested more than 64 levels" in response.json()["detail"]


def test_oversize_bodies_and_uploads_are_413(api: Api, store, data_dir) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    with TestClient(make_app(store, data_dir, max_body_bytes=1000), raise_server_exceptions=False) as client:
        headers = api.headers()
        big_json = json.dumps({"name": "x" * 2000}).encode()
        response = client.post(URL, content=big_json, headers={**headers, "Content-Type": "application/json"})
        assert_error(response, 413, "Request body is larger than the limit of 1000 bytes.", code="request_too_large")
        response = client.post(URL, data={"name": "x", "is_static": "true"},
                               files={"csv": ("big.csv", b"d1\n" * 1000)}, headers=headers)
        assert response.status_code == 413

        def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(10):
                yield b"d" * 200

        response = client.post(URL, content=chunks(), headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 413
        assert client.post(URL, json={"name": "small", "filters": PRO_FILTERS}, headers=headers).status_code == 201
    assert [c.name for c in store.list_cohorts(1, include_deleted=True)] == ["small"]


def test_empty_patch_body_is_an_empty_object(api: Api) -> None:
    cohort = api.create({"name": "x", "filters": PRO_FILTERS})
    assert api.patch(f"{URL}{cohort['id']}/").status_code == 200


# --------------------------------------------------------------------------------------- routing details


def test_paths_work_without_the_trailing_slash(api: Api) -> None:
    response = api.post(URL.rstrip("/"), json={"name": "x", "filters": PRO_FILTERS})
    assert response.status_code == 201
    assert api.get(f"{URL}{response.json()['id']}").status_code == 200


def test_unknown_routes_and_methods(api: Api) -> None:
    assert_error(api.get("/api/projects/1/nothing/"), 404, "Not found.")
    assert_error(api.post(f"{URL}1/"), 405, 'Method "POST" not allowed.', code="method_not_allowed")


def test_openapi_schema_is_published(api: Api) -> None:
    schema = api.client.get("/api/schema/").json()
    paths = schema["paths"]
    for path in ("/api/projects/{project_id}/cohorts/", "/api/projects/{project_id}/cohorts/{cohort_id}/",
                 "/api/projects/{project_id}/cohorts/{cohort_id}/persons/",
                 "/api/projects/{project_id}/cohorts/{cohort_id}/add_persons_to_static_cohort/",
                 "/api/projects/{project_id}/cohorts/{cohort_id}/remove_person_from_static_cohort/",
                 "/api/projects/{project_id}/cohorts/{cohort_id}/calculation_history/",
                 "/api/projects/{project_id}/feature_flags/", "/api/projects/{project_id}/feature_flags/{flag_id}/"):
        assert path in paths
    assert "multipart/form-data" in paths["/api/projects/{project_id}/cohorts/"]["post"]["requestBody"]["content"]
    assert api.client.get("/api/docs/").status_code == 200
