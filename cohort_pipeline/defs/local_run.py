"""Running the main job in-process, as ``cohort-pipeline run`` does: every cohort of the store, one run."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from cohort_pipeline.defs.jobs import refresh_cohorts
from cohort_pipeline.defs.partitions import COHORTS
from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.service.cohort_keys import cohort_key
from cohort_pipeline.service.definitions_snapshot import sync_definitions


def local_instance() -> dg.DagsterInstance:
    """The Dagster instance of ``$DAGSTER_HOME`` when that is set (so the UI shows the run), else an ephemeral one.
    The caller keeps it alive while it reads the run's result (the result only holds a weak reference)."""
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def refresh_everything(settings: CohortPipelineSettings, instance: dg.DagsterInstance, *,
                       as_of: str | None = None) -> dg.ExecuteInProcessResult | None:
    """Sync the definitions file, register a partition per cohort and execute ``refresh_cohorts`` over all of them
    in one run; ``None`` when the store holds no cohort. Raises the file's error before any write."""
    from cohort_pipeline.definitions import defs

    store = settings.store()
    sync_definitions(store, Path(settings.definitions_path), Path(settings.state_dir))
    keys = [cohort_key(p.id, c.id) for p in store.list_projects() for c in store.list_cohorts(p.id)]
    instance.add_dynamic_partitions(COHORTS, [k for k in keys if not instance.has_dynamic_partition(COHORTS, k)])
    ordered = [k for k in instance.get_dynamic_partitions(COHORTS) if k in set(keys)]
    if not ordered:
        return None
    tags = {"dagster/asset_partition_range_start": ordered[0], "dagster/asset_partition_range_end": ordered[-1]}
    run_config = {"resources": {"settings": {"config": settings.model_dump()}},
                  "ops": {"cohort_membership": {"config": {"as_of": as_of}}}}
    job = defs().resolve_job_def(refresh_cohorts.name)
    return job.execute_in_process(run_config=run_config, instance=instance, tags=tags, raise_on_error=False)
