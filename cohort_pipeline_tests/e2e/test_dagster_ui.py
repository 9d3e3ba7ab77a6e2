"""The Dagster UI and API for real: an analyst materializes one cohort partition from the asset page in headless
Chromium, and a client launches a partitioned materialization through ``DagsterGraphQLClient``; both runs publish a
new version of their cohort in the store."""

from __future__ import annotations

import re
import time

import pytest
from dagster_graphql import DagsterGraphQLClient

from cohort_pipeline_tests.e2e.conftest import CHROMIUM, DagsterServer, require_chromium
from cohort_pipeline_tests.service.helpers import NOW_TEXT, persons_where

pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")  # inside the client

RUN_TIMEOUT_S = 60
UI_TIMEOUT_MS = 30_000
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def wait_for_run(client: DagsterGraphQLClient, run_id: str, server: DagsterServer) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in FINISHED:
            return status
        time.sleep(1)
    pytest.fail(f"run {run_id} did not finish within {RUN_TIMEOUT_S} s:\n{server.log_tail()}")


def select_partition(page, dialog, key: str, attempts: int = 4) -> None:
    """Pick one partition in the launch dialog's partition picker. The picker is a popover over a list the UI
    re-renders while it polls, so a click can land while it (re)opens: retry the pick a few times."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    picker_open = page.get_by_text(re.compile(r"^Select all \(\d+\)$"))
    for attempt in range(attempts):
        try:
            if not picker_open.is_visible():
                dialog.get_by_text("Select a partition or create one").click(timeout=5_000)
                expect(picker_open).to_be_visible(timeout=5_000)
            page.keyboard.press("Control+A")
            page.keyboard.type(key)
            expect(page.get_by_text("Select all (1)")).to_be_visible(timeout=5_000)
            page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(key)}\s")).first.click(timeout=5_000)
            if picker_open.is_visible():
                page.keyboard.press("Escape")  # closes the popover, not the dialog
            expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible(timeout=5_000)
            return
        except (PlaywrightError, AssertionError):
            if attempt == attempts - 1:
                raise


def high_scorers() -> int:
    """Cohort 3: score > 50, numbers and numeric strings alike (a person-property cohort: ``now`` does not matter)."""
    def score(props: dict) -> float | None:
        try:
            return float(props.get("score"))
        except (TypeError, ValueError):
            return None
    return len(persons_where(1, lambda p: (score(p) or 0) > 50))


def test_an_analyst_materializes_one_cohort_partition_from_the_asset_page(dagster_server: DagsterServer) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    store = dagster_server.store()
    before = store.get_cohort(1, 3)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script("window.localStorage.setItem('communityNux', '1')")  # no "join" modal
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{dagster_server.url}/assets/cohort_membership")

            page.get_by_role("button", name="Materialize…").click()
            confirm = page.get_by_role("button", name="Confirm")  # "upstream assets were never materialized"
            launch_dialog = page.get_by_text("Launch runs to materialize cohort_membership")
            expect(confirm.or_(launch_dialog)).to_be_visible()
            if confirm.is_visible():
                confirm.click()
            dialog = page.get_by_role("dialog")
            select_partition(page, dialog, "p1-c3")
            dialog.get_by_role("button", name="Launch 1 run").click()

            expect(page.get_by_text(re.compile(r"Launched run \w+"))).to_be_visible()
            page.get_by_role("button", name="View").or_(page.get_by_role("link", name="View")).first.click()
            page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
            run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)

            page.goto(f"{dagster_server.url}/assets/cohort_membership?view=partitions&partition=p1-c3")
            expect(page.get_by_text(str(high_scorers()), exact=True).first).to_be_visible()
        except Exception:
            page.screenshot(path=str(dagster_server.log.with_name("failure.png")))
            raise
        finally:
            browser.close()

    client = DagsterGraphQLClient(dagster_server.host, port_number=dagster_server.port)
    assert client.get_run_status(run_id).value == "SUCCESS"
    after = store.get_cohort(1, 3)
    assert (after.version, after.count, after.is_calculating) == (before.version + 1, high_scorers(), False)
    assert len(store.members(3)) == high_scorers()
    assert store.calculation_history(3)[0].version == after.version


def test_a_partitioned_materialization_launched_through_the_graphql_client(dagster_server: DagsterServer) -> None:
    store = dagster_server.store()
    before = store.get_cohort(2, 101)
    client = DagsterGraphQLClient(dagster_server.host, port_number=dagster_server.port)

    run_id = client.submit_job_execution(
        "__ASSET_JOB", asset_selection=[["cohort_membership"]], tags={"dagster/partition": "p2-c101"},
        run_config={"ops": {"cohort_membership": {"config": {"as_of": NOW_TEXT}}}})

    assert wait_for_run(client, run_id, dagster_server) == "SUCCESS", dagster_server.log_tail()
    free_plan = len(persons_where(2, lambda p: p.get("plan") == "free"))
    after = store.get_cohort(2, 101)
    assert (after.version, after.count, after.is_calculating) == (before.version + 1, free_plan, False)
    assert store.calculation_history(101)[0].count == free_plan
