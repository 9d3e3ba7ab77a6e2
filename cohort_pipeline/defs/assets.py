"""The cohort asset graph: definitions and data in, validated memberships with counts out.

    cohort_definitions ─┐
    persons ────────────┼─► cohort_membership (every cohort of every project, one fused pass per project)
    person_distinct_ids ┤
    events ─────────────┘
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.service.calculate import calculate_project
from cohort_pipeline.service.outputs import counts_frame, counts_markdown
from cohort_pipeline.service.publish import publish_project, sync_project
from cohort_pipeline.sources import TABLES

GROUP = "cohorts"


@dg.asset(group_name=GROUP, kinds={"json", "sqlite"})
def cohort_definitions(settings: CohortPipelineSettings) -> dg.MaterializeResult:
    """Validate the definitions file and make the store hold exactly its projects and cohorts."""
    projects = settings.projects()
    store = settings.store()
    for project in projects:
        sync_project(store, project)
    return dg.MaterializeResult(metadata={
        "projects": len(projects),
        "cohorts": sum(len(p.cohorts) for p in projects),
    })


def _table_asset(table: str) -> dg.AssetsDefinition:
    @dg.asset(name=table, group_name=GROUP, kinds={"polars", "parquet"})
    def _asset(settings: CohortPipelineSettings) -> dg.MaterializeResult:
        rows = {
            f"project_{p.id}": getattr(settings.project_data(p.id), table).select(pl.len()).collect().item()
            for p in settings.projects()
        }
        return dg.MaterializeResult(metadata={"dagster/row_count": sum(rows.values()), **rows})

    _asset.__doc__ = f"The `{table}` table of every project, read and checked against the data contract."
    return _asset


persons, person_distinct_ids, events = (_table_asset(table) for table in TABLES)


@dg.asset(group_name=GROUP, deps=[cohort_definitions, *TABLES], kinds={"polars", "sqlite"})
def cohort_membership(settings: CohortPipelineSettings) -> dg.MaterializeResult:
    """Calculate every cohort, publish each as a new version in the store, and report the counts."""
    store = settings.store()
    results = []
    for project in settings.projects():
        sync_project(store, project)  # idempotent; this asset may be materialized alone after the file changed
        started = datetime.now(UTC)
        result = calculate_project(project, settings.project_data(project.id), now=started)
        publish_project(store, result, started_at=started, finished_at=datetime.now(UTC))
        results.append(result)
    counts = counts_frame(results)
    failed = counts.filter(pl.col("error").is_not_null())
    if len(failed):
        lines = [f"cohort {r['cohort_id']} ({r['name']}): {r['error']}" for r in failed.iter_rows(named=True)]
        raise dg.Failure(
            description=f"{len(failed)} of {len(counts)} cohorts failed; the others were published.\n"
            + "\n".join(lines),
            metadata={"counts": dg.MetadataValue.md(counts_markdown(counts))},
        )
    return dg.MaterializeResult(metadata={
        "dagster/row_count": int(counts["count"].sum() or 0),
        "cohorts": len(counts),
        "counts": dg.MetadataValue.md(counts_markdown(counts)),
    })


refresh_cohorts = dg.define_asset_job("refresh_cohorts", selection=dg.AssetSelection.groups(GROUP),
                                      description="Load definitions and data, calculate and publish every cohort.")
