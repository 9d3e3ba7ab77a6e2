"""The code location loads, and its asset graph is exactly the one below: a change to the graph (a key, a
dependency, a group, a kind, partitions, checks, jobs, schedules, sensors) shows up here as a reviewable diff."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cohort_pipeline.defs.resources import CohortPipelineSettings

DATA = {"group": "cohorts", "kinds": ["parquet", "polars"], "partitions": None, "deps": [],
        "checks": {"data_contract": ("ERROR", False)}}
MEMBERSHIP_CHECKS = {
    "pairs_unique": ("ERROR", True),
    "cohort_id_not_null": ("ERROR", True),
    "person_id_not_null": ("ERROR", True),
    "members_are_known_persons": ("ERROR", True),
    "count_matches_rows": ("ERROR", True),
    "realtime_within_max_size": ("ERROR", True),
    "size_change_within_threshold": ("WARN", False),
}
GRAPH = {
    "cohort_definitions": {"deps": [], "group": "cohorts", "kinds": ["json", "sqlite"], "partitions": None,
                           "checks": {}},
    "persons": DATA,
    "person_distinct_ids": DATA,
    "events": DATA,
    "property_definitions": {"deps": ["cohort_definitions", "events", "persons"], "group": "cohorts",
                             "kinds": ["polars"], "partitions": None, "checks": {}},
    "cohort_membership": {
        "deps": ["cohort_definitions", "events", "person_distinct_ids", "persons", "property_definitions"],
        "group": "cohorts", "kinds": ["polars", "sqlite"], "partitions": ("cohorts", "single_run"),
        "checks": MEMBERSHIP_CHECKS,
    },
    "cohort_counts": {"deps": ["cohort_membership"], "group": "cohorts", "kinds": ["csv", "sqlite"],
                      "partitions": None, "checks": {}},
    "cohort_calculation_history": {"deps": ["cohort_membership"], "group": "cohorts", "kinds": ["csv", "sqlite"],
                                   "partitions": None, "checks": {}},
}
MEMBERSHIP_AND_SUMMARIES = ["cohort_calculation_history", "cohort_counts", "cohort_membership"]
JOBS = {
    "refresh_cohorts": sorted(GRAPH),
    "recalculate_cohorts": MEMBERSHIP_AND_SUMMARIES,
    "sync_cohort_definitions": ["cohort_definitions"],
    "refresh_data": ["events", "person_distinct_ids", "persons", "property_definitions"],
}
SENSORS = {"cohort_changes": (["recalculate_cohorts", "sync_cohort_definitions"], "RUNNING", 30),
           "new_data": (["recalculate_cohorts", "refresh_data"], "RUNNING", 60)}
SCHEDULES = {"recalculate_stale_cohorts": ("recalculate_cohorts", "*/5 * * * *", "RUNNING")}


def _partitions(node: Any) -> tuple[str, str] | None:
    if not node.is_partitioned:
        return None
    return node.partitions_def.name, node.backfill_policy.policy_type.value.lower()


def asset_graph(location: dg.Definitions) -> dict[str, dict[str, Any]]:
    graph = location.resolve_asset_graph()
    result = {}
    for node in graph.asset_nodes:
        checks = {}
        for key in node.check_keys:
            spec = graph.get_check_spec(key)
            checks[key.name] = spec.blocking
        result[node.key.to_user_string()] = {
            "deps": sorted(key.to_user_string() for key in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": _partitions(node),
            "checks": checks,
        }
    return result


def expected_graph() -> dict[str, dict[str, Any]]:
    return {key: {**spec, "checks": {name: blocking for name, (_, blocking) in spec["checks"].items()}}
            for key, spec in GRAPH.items()}


def test_the_code_location_loads(location: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(location)


def test_asset_graph_snapshot(location: dg.Definitions) -> None:
    assert asset_graph(location) == expected_graph()


def test_membership_checks_are_the_quality_checks_with_their_severity(location: dg.Definitions) -> None:
    from cohort_pipeline.quality import CHECKS

    assert {c.name: (str(c.severity), c.severity == "ERROR") for c in CHECKS} == MEMBERSHIP_CHECKS
    graph = location.resolve_asset_graph()
    for key in graph.get(dg.AssetKey("cohort_membership")).check_keys:
        assert graph.get_check_spec(key).partitions_def.name == "cohorts"  # one result per cohort


def test_jobs_resources_schedules_and_sensors(location: dg.Definitions) -> None:
    jobs = {job.name: sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
            for job in location.resolve_all_job_defs() if job.name != "__ASSET_JOB"}
    assert jobs == JOBS
    assert list(location.resources or {}) == ["settings"]
    assert isinstance(location.resources["settings"], CohortPipelineSettings)
    sensors = {s.name: (sorted(j.name for j in s.jobs), s.default_status.value, s.minimum_interval_seconds)
               for s in location.sensors or []}
    assert sensors == SENSORS
    schedules = {s.name: (s.job_name, s.cron_schedule, s.default_status.value) for s in location.schedules or []}
    assert schedules == SCHEDULES
