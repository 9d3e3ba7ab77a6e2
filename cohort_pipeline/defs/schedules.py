"""The stale-cohort schedule (running by default): PostHog's periodic recalculation of dynamic cohorts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from cohort_pipeline.defs.jobs import recalculate_cohorts
from cohort_pipeline.defs.partitions import COHORTS
from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.defs.run_requests import recalculation_requests
from cohort_pipeline.service.scheduling import stale_cohorts


@dg.schedule(
    name="recalculate_stale_cohorts",
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    job=recalculate_cohorts,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: resets cohorts stuck calculating for over an hour, then recalculates dynamic "
                "cohorts last calculated longer ago than `stale_after_minutes` (default 15, PostHog's MAX_AGE), "
                "backing off 30 min x 2^errors after failures and giving up after 20 consecutive errors.",
)
def recalculate_stale_cohorts(context: dg.ScheduleEvaluationContext,
                              settings: CohortPipelineSettings) -> list[dg.RunRequest] | dg.SkipReason:
    store = settings.store()
    now = context.scheduled_execution_time or datetime.now(UTC)
    stale = stale_cohorts(store, context.instance.get_dynamic_partitions(COHORTS), now=now,
                          max_age=timedelta(minutes=settings.stale_after_minutes))
    if stale.reset:
        context.log.warning(f"reset cohorts stuck calculating for over an hour: {stale.reset}")
    requests = recalculation_requests(store, context.instance.get_dynamic_partitions(COHORTS),
                                      {key: "stale" for key in stale.to_calculate},
                                      job_name=recalculate_cohorts.name, trigger="stale_schedule")
    return requests or dg.SkipReason("no dynamic cohort is due for recalculation")
