"""A real ``dagster dev -w workspace.yaml`` for the end-to-end tests: webserver, daemon and code server.

It runs on a free loopback port with a fresh ``DAGSTER_HOME`` and its own store, in a new process session; the
whole session is killed with SIGKILL afterwards (background processes on these machines ignore SIGTERM). The store
is prepared as a user's would be after ``cohort-pipeline run``: the sample definitions synced and every cohort
published once. The fixture waits until the UI answers and the cohort sensor's first tick has registered a
partition per cohort.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline.service.definitions_snapshot import load_snapshot, sync_definitions
from cohort_pipeline.service.recalculation import recalculate
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import REPO, SAMPLE, SAMPLE_DEFINITIONS

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER_ENV = "COHORT_PIPELINE_REQUIRE_BROWSER"
STARTUP_TIMEOUT_S = 75
PARTITIONS_TIMEOUT_S = 45
PARTITIONS_QUERY = """
query { assetNodeOrError(assetKey: {path: ["cohort_membership"]}) { ... on AssetNode { partitionKeys } } }
"""


def require_chromium() -> None:
    """Skip without Debian's chromium, unless CI demands the browser test (then fail)."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} not found (apt-get install chromium)"
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_BROWSER_ENV}=1")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), in case one left the session."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_session(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group and anything that escaped it; wait for the leader."""
    strays = _descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


@dataclass(frozen=True)
class DagsterServer:
    host: str
    port: int
    store_url: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def store(self) -> CohortStore:
        return CohortStore(self.store_url)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def partition_keys(self) -> list[str]:
        response = httpx.post(f"{self.url}/graphql", json={"query": PARTITIONS_QUERY}, timeout=10)
        node = response.json()["data"]["assetNodeOrError"]
        return list(node.get("partitionKeys") or [])


def _prepare_store(root: Path) -> str:
    """The sample definitions synced and every cohort published once (as ``cohort-pipeline run`` leaves it)."""
    url = f"sqlite:///{root / 'store.db'}"
    store = CohortStore(url)
    store.migrate()
    sync_definitions(store, SAMPLE_DEFINITIONS, root / "state")
    keys = [CohortKey(p.id, c.id) for p in store.list_projects() for c in store.list_cohorts(p.id)]
    report = recalculate(store, keys, data_dir=SAMPLE, snapshot=load_snapshot(root / "state"))
    assert not report.failed, report.failure_description()
    store.close()
    return url


def _wait_until(condition, timeout: float, what: str, server: DagsterServer, process: subprocess.Popen[bytes]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode} while waiting for {what}:\n{server.log_tail()}")
        try:
            value = condition()
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            value = None
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterServer]:
    root = tmp_path_factory.mktemp("dagster_dev")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    store_url = _prepare_store(root)
    server = DagsterServer("127.0.0.1", free_port(), store_url, root / "dagster_dev.log")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "COHORT_PIPELINE_STORE_URL": store_url,
        "COHORT_PIPELINE_STATE_DIR": str(root / "state"),
        "COHORT_PIPELINE_DATA_DIR": str(SAMPLE),
        "COHORT_PIPELINE_DEFINITIONS": str(SAMPLE_DEFINITIONS),
        "GX_ANALYTICS_ENABLED": "false",
    }
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [dagster, "dev", "-w", "workspace.yaml", "-h", server.host, "-p", str(server.port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_until(lambda: httpx.get(f"{server.url}/server_info", timeout=5).status_code == 200,
                    STARTUP_TIMEOUT_S, "the webserver", server, process)
        _wait_until(lambda: len(server.partition_keys()) == 23, PARTITIONS_TIMEOUT_S,
                    "the cohort sensor to register the partitions", server, process)
        yield server
    finally:
        kill_session(process)
