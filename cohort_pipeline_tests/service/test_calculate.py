"""calculate_project: static populations (CSV, person-id list, criteria snapshot), dynamic cohorts and references
in one run, failures confined to the cohort (and its dependents), and project isolation.

Expected members are worked out from the raw sample tables in plain Python (helpers), not by the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cohort_pipeline.service.calculate import ProjectResult, calculate_project
from cohort_pipeline.service.definitions_file import ProjectSpec, load_definitions
from cohort_pipeline.sources import ProjectData, load_project
from cohort_pipeline_tests.service.helpers import (
    SAMPLE,
    UPLOADS,
    VIP_DISTINCT_IDS,
    WEBINAR_EMAILS,
    cohort_leaf,
    dynamic,
    person_ids,
    person_leaf,
    persons_of_distinct_ids,
    persons_where,
    persons_with_emails,
    write_json,
)

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)

# spec 7.2, PostHog's CSV messages
EMPTY = "CSV file is empty. Please upload a CSV file with at least one row of data."
ENCODING = "CSV file encoding is not supported. Please save your file as UTF-8 and try again."
NO_VALID_IDS = ("CSV file contains no valid person IDs, distinct IDs, or email addresses. Please ensure your file "
                "has data rows with person IDs, distinct IDs, or email addresses.")
NO_ID_COLUMN = ("Multi-column CSV must contain at least one column with a supported ID header: 'person_id', "
                "'Person .id' (PostHog export format), 'distinct_id', 'distinct-id', or 'email'. Found columns: "
                "name, phone")


def paying(props: dict[str, Any]) -> bool:
    return props.get("plan") in ("pro", "enterprise")


def gmail(props: dict[str, Any]) -> bool:
    return isinstance(props.get("email"), str) and "@gmail.com" in props["email"].lower()


@pytest.fixture(scope="module")
def sample_results(sample_projects: dict[int, ProjectSpec], sample_data: dict[int, ProjectData]
                   ) -> dict[int, ProjectResult]:
    return {pid: calculate_project(sample_projects[pid], sample_data[pid], now=NOW) for pid in (1, 2)}


def members(result: ProjectResult, cohort_id: int) -> set[str]:
    return set(result.members_of(cohort_id).to_list())


def outcome(result: ProjectResult, cohort_id: int):
    return next(o for o in result.outcomes if o.cohort_id == cohort_id)


# --------------------------------------------------------------------------------------------------------------
# The sample
# --------------------------------------------------------------------------------------------------------------


def test_static_cohort_from_a_csv_of_distinct_ids(sample_results: dict[int, ProjectResult]) -> None:
    result = sample_results[1]
    expected = persons_of_distinct_ids(1, VIP_DISTINCT_IDS)
    assert len(expected) == 5  # user_99999 belongs to nobody
    assert members(result, 9) == expected
    summary = outcome(result, 9).static_import
    assert (summary.source, summary.ids_submitted, summary.persons_matched, summary.unmatched_count) == (
        "csv:uploads/vip_customers.csv", 6, 5, 1)  # the blank id row is skipped, not submitted


def test_static_cohort_from_a_csv_of_emails(sample_results: dict[int, ProjectResult]) -> None:
    result = sample_results[1]
    expected = persons_with_emails(1, WEBINAR_EMAILS)
    assert len(expected) == 2
    assert members(result, 10) == expected
    summary = outcome(result, 10).static_import
    assert (summary.ids_submitted, summary.persons_matched, summary.unmatched_count) == (3, 2, 1)


def test_static_cohort_as_a_criteria_snapshot(sample_results: dict[int, ProjectResult]) -> None:
    expected = persons_where(1, lambda p: p.get("plan") == "pro" and p.get("country") == "DE")
    assert expected and members(sample_results[1], 11) == expected
    assert outcome(sample_results[1], 11).static_import is None


def test_dynamic_cohorts_and_references_in_one_run(sample_results: dict[int, ProjectResult]) -> None:
    result = sample_results[1]
    assert members(result, 1) == persons_where(1, paying)
    assert members(result, 2) == persons_where(1, gmail)
    # 13: (Gmail OR the VIP CSV cohort) AND NOT paying; the static cohort of this run is read from this run
    vip = persons_of_distinct_ids(1, VIP_DISTINCT_IDS)
    assert members(result, 13) == (persons_where(1, gmail) | vip) - persons_where(1, paying)
    assert members(sample_results[2], 101) == persons_where(2, lambda p: p.get("plan") == "free")


def test_counts_equal_membership_rows_and_nothing_fails(sample_results: dict[int, ProjectResult],
                                                        sample_projects: dict[int, ProjectSpec]) -> None:
    for project_id, result in sample_results.items():
        assert [o.cohort_id for o in result.outcomes] == [c.id for c in sample_projects[project_id].cohorts]
        for o in result.outcomes:
            assert o.error is None, o
            assert o.count == len(result.members_of(o.cohort_id)) == len(members(result, o.cohort_id))
        assert result.memberships.columns == ["cohort_id", "person_id"]
        assert not result.memberships.is_duplicated().any()
        assert set(result.memberships["person_id"]) <= person_ids(project_id)


def test_projects_are_isolated(sample_results: dict[int, ProjectResult]) -> None:
    """The VIP CSV is used in both projects: each resolves user_1000... to its own persons."""
    in_1, in_2 = members(sample_results[1], 9), members(sample_results[2], 102)
    assert in_1 == persons_of_distinct_ids(1, VIP_DISTINCT_IDS)
    assert in_2 == persons_of_distinct_ids(2, VIP_DISTINCT_IDS)
    assert len(in_2) == 5 and in_2 <= person_ids(2)
    assert not in_1 & in_2
    assert persons_of_distinct_ids(1, ["user_1000"]) != persons_of_distinct_ids(2, ["user_1000"])


# --------------------------------------------------------------------------------------------------------------
# Person-id lists and failures
# --------------------------------------------------------------------------------------------------------------


def load_one(tmp_path: Path, *cohorts: dict[str, Any]) -> ProjectSpec:
    path = write_json(tmp_path / "cohorts.json", {"projects": [{"id": 1, "name": "P", "cohorts": list(cohorts)}]})
    return load_definitions(path)[0]


def test_static_cohort_from_a_person_id_list(tmp_path: Path, sample_data: dict[int, ProjectData]) -> None:
    two = sorted(persons_where(1, paying))[:2]
    spec = load_one(
        tmp_path,
        {"id": 1, "name": "Picked", "is_static": True, "_create_static_person_ids": [*two, "not-a-person"]},
        dynamic(2, "Picked and paying", cohort_leaf(1), person_leaf("plan", "exact", ["pro", "enterprise"])),
    )
    result = calculate_project(spec, sample_data[1], now=NOW)
    assert members(result, 1) == set(two) == members(result, 2)
    summary = outcome(result, 1).static_import
    assert (summary.source, summary.ids_submitted, summary.persons_matched, summary.unmatched_count) == (
        "person_ids", 3, 2, 1)


@pytest.mark.parametrize(("content", "message"), [
    (b"", EMPTY),
    (b"\n\n", EMPTY),
    (b"distinct_id\n\xff\xfe\n", ENCODING),
    (b"name,phone\nAda,123\n", NO_ID_COLUMN),
    (b"email\n\n", NO_VALID_IDS),
], ids=["empty", "blank lines", "not utf-8", "no id column", "header only"])
def test_a_bad_csv_fails_its_cohort_and_its_dependents_only(
    tmp_path: Path, sample_data: dict[int, ProjectData], content: bytes, message: str
) -> None:
    (tmp_path / "bad.csv").write_bytes(content)
    spec = load_one(
        tmp_path,
        dynamic(1, "Paying", person_leaf("plan", "exact", ["pro", "enterprise"])),
        {"id": 20, "name": "Bad upload", "is_static": True, "csv": "bad.csv"},
        dynamic(21, "In the bad upload", cohort_leaf(20)),
        dynamic(22, "Paying, not in the bad upload", cohort_leaf(1), cohort_leaf(20, negation=True)),
        dynamic(23, "Either", cohort_leaf(21), cohort_leaf(1), group="OR"),
        {"id": 24, "name": "VIP", "is_static": True, "csv": str(UPLOADS / "vip_customers.csv")},
    )
    result = calculate_project(spec, sample_data[1], now=NOW)

    bad = outcome(result, 20)
    assert bad.count is None and bad.error is not None
    assert bad.error.message == f"csv: {message}"  # the CSVImportError, with PostHog's text
    assert bad.error.error_code == "validation_error"
    referenced = f"Referenced cohort 20 failed: csv: {message}"
    assert outcome(result, 21).error.message == referenced
    assert outcome(result, 22).error.message == referenced  # not "nobody": a failed cohort is not an unknown id
    assert outcome(result, 23).error.message == f"Referenced cohort 21 failed: {referenced}"
    for failed in (20, 21, 22, 23):
        assert outcome(result, failed).count is None
        assert members(result, failed) == set()
    # the others are computed as if nothing had happened
    assert members(result, 1) == persons_where(1, paying) and outcome(result, 1).count == len(members(result, 1))
    assert members(result, 24) == persons_of_distinct_ids(1, VIP_DISTINCT_IDS)
    assert set(result.memberships["cohort_id"]) == {1, 24}


def test_action_cohorts_use_the_projects_actions(tmp_path: Path) -> None:
    """An action of the definitions file reaches the engine: the sample's checkout action matches exactly the
    persons with a checkout pageview (counted here straight from the events), an unknown action nobody."""
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    leaf = {"type": "behavioral", "event_type": "actions", "value": "performed_event",
            "time_value": 30, "time_interval": "day"}
    spec = {"projects": [{"id": 1, "name": "Acme", "actions": [
        {"id": 1, "name": "Checkout", "steps": [{"event": "$pageview", "url": "/checkout"}]}], "cohorts": [
        {"id": 1, "name": "Checkout", "filters": {"properties": {"type": "AND", "values": [{**leaf, "key": 1}]}}},
        {"id": 2, "name": "Unknown action", "filters": {"properties": {"type": "AND", "values": [
            {**leaf, "key": 99}]}}},
    ]}]}
    project = load_definitions(write_json(tmp_path / "cohorts.json", spec))[0]
    data = load_project(SAMPLE, 1)
    result = calculate_project(project, data, now=now)

    since = datetime(2026, 10, 2, tzinfo=UTC)  # day-aligned: 30 days before 2026-11-01, UTC midnight
    expected = (
        data.events.filter((pl.col("event") == "$pageview") & (pl.col("timestamp") >= since)
                           & (pl.col("timestamp") <= now.replace(hour=0) + timedelta(days=1, microseconds=-1))
                           & pl.col("properties").str.json_path_match('$["$current_url"]').str.contains("/checkout",
                                                                                                       literal=True))
        .join(data.person_distinct_ids, on="distinct_id").select("person_id").unique().collect()["person_id"]
    )
    assert sorted(result.members_of(1).to_list()) == sorted(expected.to_list())
    assert len(expected) > 0
    assert result.members_of(2).to_list() == []
