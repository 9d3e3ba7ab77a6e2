"""End to end: ``cohort-pipeline keys create`` and ``cohort-pipeline serve`` as real processes, driven with httpx
over loopback. A cohort is created by CSV upload and another from filters, the pending one is calculated with the
service use-case, and both are read back with their counts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.api.conftest import NOW, P1, P2, P3, PRO_FILTERS, recalculate_live_cohorts

CLI = [sys.executable, "-c", "from cohort_pipeline.cli import app; app()"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture
def server(tmp_path: Path, data_dir: Path) -> Iterator[tuple[str, str, str]]:
    """A running ``cohort-pipeline serve`` on a free loopback port; yields (base url, api key, store url)."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    created = _cli("keys", "create", "--project", "1", "--scopes", "cohort:read,cohort:write,person:read",
                   "--label", "e2e", "--create-project", "Acme", "--store-url", store_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("phx_")
    port = _free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--data-dir", str(data_dir), "--store-url", store_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                if httpx.get(f"{base}/api/schema/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not start within 60 s")
            time.sleep(0.2)
        yield base, key, store_url
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # background processes here ignore SIGTERM
        process.wait(timeout=30)


def test_served_api_creates_by_csv_and_filters_and_reads_counts_after_calculation(
    server: tuple[str, str, str], data_dir: Path
) -> None:
    base, key, store_url = server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        uploaded = client.post(
            "/api/projects/1/cohorts/",
            data={"name": "Webinar", "is_static": "true", "filters": json.dumps({"properties": {}})},
            files={"csv": ("attendees.csv", b"email\nalice@example.com\nbob@example.com\nghost@example.com\n",
                           "text/csv")},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["static_import"]["unmatched_count"] == 1
        dynamic = client.post("/api/projects/1/cohorts/", json={"name": "Pro", "filters": PRO_FILTERS})
        assert dynamic.status_code == 201, dynamic.text
        assert dynamic.json()["is_calculating"] is True and dynamic.json()["count"] is None

        store = CohortStore(store_url)
        try:
            outcomes = recalculate_live_cohorts(store, 1, data_dir, now=NOW).outcomes
        finally:
            store.close()
        assert [(o.cohort_id, o.count) for o in outcomes] == [(dynamic.json()["id"], 2)]

        static_back = client.get(f"/api/projects/1/cohorts/{uploaded.json()['id']}/").json()
        dynamic_back = client.get(f"/api/projects/1/cohorts/{dynamic.json()['id']}").json()
        assert (static_back["count"], static_back["is_static"]) == (2, True)
        assert (dynamic_back["count"], dynamic_back["version"], dynamic_back["is_calculating"]) == (2, 1, False)
        persons = client.get(f"/api/projects/1/cohorts/{dynamic.json()['id']}/persons/").json()["results"]
        assert [p["id"] for p in persons] == [P3, P1]
        listed = client.get("/api/projects/1/cohorts/").json()
        assert {c["name"]: c["count"] for c in listed["results"]} == {"Webinar": 2, "Pro": 2}
        exported = client.get(f"/api/projects/1/cohorts/{uploaded.json()['id']}/persons/?format=csv").text
        assert [line.split(",")[0] for line in exported.splitlines()[1:]] == [P2, P1]
        assert client.get("/api/projects/1/cohorts/", headers={"Authorization": "Bearer phx_wrong"}).status_code == 401


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    missing = _cli("keys", "create", "--project", "7", "--scopes", "cohort:read", "--store-url", store_url)
    assert missing.returncode == 2 and "project 7 does not exist" in missing.stderr
    bad_scope = _cli("keys", "create", "--project", "7", "--scopes", "cohort:admin", "--store-url", store_url)
    assert bad_scope.returncode == 2 and "unknown scope(s) cohort:admin" in bad_scope.stderr
    created = _cli("keys", "create", "--project", "7", "--scopes", "cohort:read", "--label", "ci",
                   "--create-project", "Seven", "--store-url", store_url)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    listed = _cli("keys", "list", "--project", "7", "--store-url", store_url)
    assert listed.returncode == 0 and "ci" in listed.stdout and "cohort:read" in listed.stdout
    assert secret not in listed.stdout
    store = CohortStore(store_url)
    try:
        record = store.verify_api_key(secret)
        assert record is not None and record.scopes == ("cohort:read",)
        revoked = _cli("keys", "revoke", str(record.id), "--store-url", store_url)
        assert revoked.returncode == 0 and f"key {record.id} revoked" in revoked.stdout
        assert store.verify_api_key(secret) is None
    finally:
        store.close()
    assert _cli("keys", "revoke", "999", "--store-url", store_url).returncode == 2
