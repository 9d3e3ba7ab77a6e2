"""Turning "recalculate these cohorts" into Dagster run requests: versions first, then one run per key range."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import dagster as dg

from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline.service.scheduling import partition_ranges, request_versions, versions_for
from cohort_pipeline.store import CohortStore

TRIGGER_TAG = "cohort_pipeline/trigger"


def recalculation_requests(store: CohortStore, ordered_partitions: Sequence[str], to_calculate: Mapping[CohortKey, str],
                           *, job_name: str, trigger: str) -> list[dg.RunRequest]:
    """Request a version for every registered cohort of ``to_calculate`` (spec 1.3: at run-request time), then one
    run per contiguous range of their partitions (a single-run backfill policy run takes a range), carrying the
    requested versions in its config so the run can tell when it has become obsolete."""
    registered = set(ordered_partitions)
    versions = request_versions(store, [k for k in to_calculate if str(k) in registered])
    requests = []
    for group in partition_ranges(ordered_partitions, [str(k) for k in versions]):
        group_versions = versions_for(group, versions)
        config = {"ops": {"cohort_membership": {"config": {"versions": group_versions}}}}
        digest = hashlib.sha256(json.dumps(group_versions, sort_keys=True).encode()).hexdigest()[:12]
        tags = {TRIGGER_TAG: trigger}
        if len(group) > 1:
            tags |= {"dagster/asset_partition_range_start": group[0], "dagster/asset_partition_range_end": group[-1]}
        requests.append(dg.RunRequest(
            job_name=job_name, run_key=f"{trigger}:{group[0]}..{group[-1]}:{digest}", run_config=config, tags=tags,
            partition_key=group[0] if len(group) == 1 else None,
        ))
    return requests
