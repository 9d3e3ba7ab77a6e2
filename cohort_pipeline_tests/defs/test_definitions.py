"""The code location loads, and its asset graph is exactly the one below: a change to the graph (a key, a
dependency, a group, a kind, partitions, checks, jobs, schedules, sensors) shows up here as a reviewable diff."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cohort_pipeline.defs.resources import CohortPipelineSettings

GRAPH = {
    "cohort_definitions": {"deps": [], "group": "cohorts", "kinds": ["json", "sqlite"], "partitioned": False,
                           "checks": []},
    "persons": {"deps": [], "group": "cohorts", "kinds": ["parquet", "polars"], "partitioned": False,
                "checks": []},
    "person_distinct_ids": {"deps": [], "group": "cohorts", "kinds": ["parquet", "polars"], "partitioned": False,
                            "checks": []},
    "events": {"deps": [], "group": "cohorts", "kinds": ["parquet", "polars"], "partitioned": False,
               "checks": []},
    "cohort_membership": {
        "deps": ["cohort_definitions", "events", "person_distinct_ids", "persons"],
        "group": "cohorts", "kinds": ["polars", "sqlite"], "partitioned": False, "checks": [],
    },
}
JOBS = {"refresh_cohorts": ["cohort_definitions", "cohort_membership", "events", "person_distinct_ids", "persons"]}


def asset_graph(location: dg.Definitions) -> dict[str, dict[str, Any]]:
    graph = location.resolve_asset_graph()
    return {
        node.key.to_user_string(): {
            "deps": sorted(key.to_user_string() for key in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitioned": node.is_partitioned,
            "checks": sorted(key.to_user_string() for key in node.check_keys),
        }
        for node in graph.asset_nodes
    }


def test_the_code_location_loads(location: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(location)


def test_asset_graph_snapshot(location: dg.Definitions) -> None:
    assert asset_graph(location) == GRAPH


def test_jobs_resources_schedules_and_sensors(location: dg.Definitions) -> None:
    jobs = {job.name: sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
            for job in location.resolve_all_job_defs() if job.name != "__ASSET_JOB"}
    assert jobs == JOBS
    assert list(location.resources or {}) == ["settings"]
    assert isinstance(location.resources["settings"], CohortPipelineSettings)
    assert list(location.schedules or []) == [] and list(location.sensors or []) == []
    assert location.resolve_asset_graph().asset_check_keys == set()
