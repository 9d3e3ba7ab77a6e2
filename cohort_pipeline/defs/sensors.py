"""Sensors (running by default): new or edited cohorts in the store, and new data files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg

from cohort_pipeline.defs.jobs import recalculate_cohorts, refresh_data, sync_cohort_definitions
from cohort_pipeline.defs.partitions import COHORTS, cohort_partitions
from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.defs.run_requests import recalculation_requests
from cohort_pipeline.service.definitions_snapshot import definitions_fingerprint, synced_fingerprint
from cohort_pipeline.service.scheduling import cohort_changes, data_changes


@dg.sensor(
    name="cohort_changes",
    jobs=[recalculate_cohorts, sync_cohort_definitions],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Registers a partition for every new cohort in the store and recalculates new cohorts, edited "
                "dynamic cohorts and cohorts whose referenced cohort was recalculated; syncs the definitions file "
                "when it changes. Its first tick only registers what exists (no flood of runs).",
)
def cohort_changes_sensor(context: dg.SensorEvaluationContext, settings: CohortPipelineSettings) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    store = settings.store()
    known = context.instance.get_dynamic_partitions(COHORTS)
    changes = cohort_changes(store, known, state.get("cohorts"))
    run_requests = recalculation_requests(store, [*known, *changes.new_partitions], changes.to_calculate,
                                          job_name=recalculate_cohorts.name, trigger="cohort_changes")
    for key, reason in sorted(changes.to_calculate.items()):
        context.log.info(f"{key}: {reason}")

    fingerprint = definitions_fingerprint(Path(settings.definitions_path))
    requested = state.get("definitions")
    if fingerprint is not None and fingerprint not in (requested, synced_fingerprint(Path(settings.state_dir))):
        context.log.info(f"{settings.definitions_path} changed: syncing it into the store")
        run_requests.append(dg.RunRequest(job_name=sync_cohort_definitions.name, run_key=f"definitions:{fingerprint}"))
        requested = fingerprint

    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[cohort_partitions.build_add_request(changes.new_partitions)]
        if changes.new_partitions else [],
        cursor=json.dumps({"cohorts": changes.cursor, "definitions": requested}),
    )


@dg.sensor(
    name="new_data",
    jobs=[refresh_data, recalculate_cohorts],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="When a project's data files change: re-reads the data assets, and recalculates the dynamic cohorts "
                "the change can affect (events: behavioural cohorts and their dependents; persons: every dynamic "
                "cohort, and static cohorts whose id list may now match new persons).",
)
def new_data_sensor(context: dg.SensorEvaluationContext, settings: CohortPipelineSettings) -> dg.SensorResult:
    store = settings.store()
    changes = data_changes(store, Path(settings.data_dir), settings.snapshot(), context.cursor)
    if changes.baseline or not changes.changed_tables:
        return dg.SensorResult(cursor=changes.cursor, skip_reason=dg.SkipReason(
            "recorded the data files as the baseline" if changes.baseline else "no data file changed"))
    for project_id, tables in changes.changed_tables.items():
        context.log.info(f"project {project_id}: new {', '.join(tables)}")
    digest = hashlib.sha256(changes.cursor.encode()).hexdigest()[:16]
    run_requests = [dg.RunRequest(job_name=refresh_data.name, run_key=f"data:{digest}")]
    run_requests += recalculation_requests(store, context.instance.get_dynamic_partitions(COHORTS),
                                           changes.to_calculate, job_name=recalculate_cohorts.name,
                                           trigger="new_data")
    return dg.SensorResult(run_requests=run_requests, cursor=changes.cursor)
