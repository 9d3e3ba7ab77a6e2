"""Fixtures for the HTTP API tests: small project data in the data-contract layout, a fresh store per test,
API keys, and a real HTTP client (Starlette's TestClient, an ``httpx`` client) against the app."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's notice that it prefers httpx2 (not installed here)
    from fastapi.testclient import TestClient

from cohort_pipeline.api import create_app
from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline.service.definitions_snapshot import DefinitionsSnapshot
from cohort_pipeline.service.hogql import QueryLimits
from cohort_pipeline.service.recalculation import RecalculationReport, recalculate
from cohort_pipeline.store import CohortStore

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def person_uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


P1, P2, P3, P4, P5 = (person_uuid(n) for n in range(1, 6))
Q1, Q2 = person_uuid(101), person_uuid(102)
UNKNOWN_PERSON = person_uuid(999)

PERSONS_1 = [
    (P1, "2026-01-01T00:00:00Z", {"email": "alice@example.com", "plan": "pro", "score": 90}),
    (P2, "2026-02-01T00:00:00Z", {"email": "bob@example.com", "plan": "free", "score": 10}),
    (P3, "2026-03-01T00:00:00Z", {"email": "carol@gmail.com", "plan": "pro", "score": 55}),
    (P4, "2026-04-01T00:00:00Z", {"name": "Dave", "plan": "enterprise", "score": 70}),
    (P5, "2026-05-01T00:00:00Z", {"email": "eve@example.com", "plan": "free", "score": 20}),
]
DISTINCT_IDS_1 = [("d1", P1), ("d1-alias", P1), ("d2", P2), ("d3", P3), ("d4", P4), ("d5", P5)]
EVENTS_1 = [
    ("e1", "$pageview", "d1", "2026-10-30T10:00:00Z", {"$browser": "Chrome"}),
    ("e2", "$pageview", "d1-alias", "2026-10-31T10:00:00Z", {"$browser": "Chrome"}),
    ("e3", "$pageview", "d1", "2026-10-31T11:00:00Z", {"$browser": "Safari"}),
    ("e4", "$pageview", "d2", "2026-10-29T10:00:00Z", {"$browser": "Firefox"}),
    ("e5", "purchase", "d3", "2026-10-20T10:00:00Z", {"amount": 30}),
    ("e6", "$pageview", "d4", "2026-01-05T10:00:00Z", {"$browser": "Chrome"}),
]
# project 2 reuses the distinct id "d1" on purpose: it must never resolve to a project-1 person
PERSONS_2 = [
    (Q1, "2026-01-01T00:00:00Z", {"email": "quinn@other.org", "plan": "pro"}),
    (Q2, "2026-02-01T00:00:00Z", {"email": "ray@other.org", "plan": "free"}),
]
DISTINCT_IDS_2 = [("d1", Q1), ("q2", Q2)]
EVENTS_2 = [("x1", "$pageview", "d1", "2026-10-30T10:00:00Z", {"$browser": "Chrome"})]

PRO_FILTERS = {"properties": {"type": "AND", "values": [
    {"type": "person", "key": "plan", "operator": "exact", "value": "pro"}]}}
PAGEVIEW_FILTERS = {"properties": {"type": "AND", "values": [
    {"type": "behavioral", "key": "$pageview", "event_type": "events", "value": "performed_event",
     "time_value": 7, "time_interval": "day"}]}}


def write_project(
    root: Path, project_id: int, persons: list[Any], distinct_ids: list[Any], events: list[Any]
) -> None:
    folder = root / f"project_{project_id}"
    folder.mkdir(parents=True)
    ts = pl.Datetime("us", "UTC")
    pl.DataFrame(
        {"id": [p[0] for p in persons], "created_at": [p[1] for p in persons],
         "properties": [json.dumps(p[2]) for p in persons]}
    ).with_columns(pl.col("created_at").str.to_datetime(time_zone="UTC").cast(ts)).write_parquet(
        folder / "persons.parquet")
    pl.DataFrame(
        {"distinct_id": [d[0] for d in distinct_ids], "person_id": [d[1] for d in distinct_ids]}
    ).write_parquet(folder / "person_distinct_ids.parquet")
    pl.DataFrame(
        {"uuid": [e[0] for e in events], "event": [e[1] for e in events], "distinct_id": [e[2] for e in events],
         "timestamp": [e[3] for e in events], "properties": [json.dumps(e[4]) for e in events]}
    ).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC").cast(ts)).write_parquet(
        folder / "events.parquet")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two projects in the data-contract layout (``project_<id>/{persons,person_distinct_ids,events}.parquet``);
    project 3 exists in the store only (no data folder yet)."""
    root = tmp_path_factory.mktemp("api_data")
    write_project(root, 1, PERSONS_1, DISTINCT_IDS_1, EVENTS_1)
    write_project(root, 2, PERSONS_2, DISTINCT_IDS_2, EVENTS_2)
    return root


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store with projects 1-3, copied for each test (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("api_store") / "template.db"
    store = CohortStore(f"sqlite:///{path}")
    store.migrate()
    store.create_project("Acme", project_id=1)
    store.create_project("Globex", project_id=2)
    store.create_project("Empty", project_id=3)
    store.close()
    return path


@dataclass
class Api:
    """The app under test, its store and a key per project (``*`` scope unless a test makes its own)."""

    client: TestClient
    store: CohortStore
    data_dir: Path
    key: str
    key2: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def new_key(self, *scopes: str, project_id: int = 1) -> str:
        return self.store.create_api_key(project_id, list(scopes), label="test")[1]

    def request(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        headers = {**self.headers(key), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def create(self, body: dict[str, Any], project_id: int = 1, **kwargs: Any) -> dict[str, Any]:
        response = self.post(f"/api/projects/{project_id}/cohorts/", json=body, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def cohort(self, cohort_id: int, project_id: int = 1) -> dict[str, Any]:
        response = self.get(f"/api/projects/{project_id}/cohorts/{cohort_id}/")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def make_app(store: CohortStore, data_dir: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("query_limits", QueryLimits(timeout_seconds=5))
    return create_app(store, data_dir, clock=lambda: NOW, **kwargs)


@pytest.fixture
def store(store_template: Path, tmp_path: Path) -> Iterator[CohortStore]:
    path = tmp_path / "store.db"
    shutil.copy(store_template, path)
    store = CohortStore(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture
def api(store: CohortStore, data_dir: Path) -> Iterator[Api]:
    key = store.create_api_key(1, ["*"], label="tester")[1]
    key2 = store.create_api_key(2, ["*"], label="other project")[1]
    with TestClient(make_app(store, data_dir), raise_server_exceptions=False) as client:
        yield Api(client, store, data_dir, key, key2)


def assert_error(response: Any, status: int, detail: str, *, attr: str | None = None, code: str | None = None,
                 type_: str | None = None) -> dict[str, Any]:
    """PostHog's error body with this status, message and field."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"type", "code", "detail", "attr"}, body
    assert body["detail"] == detail, body
    assert body["attr"] == attr, body
    if code is not None:
        assert body["code"] == code, body
    if type_ is not None:
        assert body["type"] == type_, body
    return body  # type: ignore[no-any-return]


def recalculate_live_cohorts(store: CohortStore, project_id: int, data_dir: Path, *, now: datetime
                             ) -> RecalculationReport:
    """What the pipeline's sensor does for cohorts created or edited through the API: the shared recalculation
    use-case over the project's live dynamic cohorts, publishing the version the API requested."""
    keys, versions = [], {}
    for record in store.list_cohorts(project_id):
        if record.is_static:
            continue
        key = CohortKey(project_id, record.id)
        keys.append(key)
        if (record.pending_version or 0) > (record.version or 0):
            versions[key] = record.pending_version
    return recalculate(store, keys, data_dir=data_dir, snapshot=DefinitionsSnapshot.empty(), versions=versions,
                       as_of=now)
