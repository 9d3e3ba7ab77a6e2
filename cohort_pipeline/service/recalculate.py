"""Calculate a project's dynamic cohorts as they are in the store, and publish each as a new version.

Cohorts created or edited through the HTTP API live only in the store (not in a definitions file), with
``pending_version`` bumped and ``is_calculating`` set. This use-case computes them with the shared
:func:`~cohort_pipeline.service.calculate.calculate_project` (one fused evaluation) and walks the version state
machine of spec 1.3: the pending version is published (or a new one requested when none is pending), failures are
recorded without touching the published members. Referenced cohorts that are not computed here (static ones)
contribute their stored members. After publishing, a realtime cohort above 20,000,000 members loses its
``realtime`` type (spec 1.2(b)).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from cohort_pipeline.service.calculate import calculate_project
from cohort_pipeline.service.cohort_graph import storable_ids, stored_definition
from cohort_pipeline.service.cohorts import realtime_type_after_count
from cohort_pipeline.service.definitions_file import CohortSpec, ProjectSpec
from cohort_pipeline.service.publish import PublishOutcome
from cohort_pipeline.sources import ProjectData
from cohort_pipeline.store import CohortRecord, CohortStore


def _raw(record: CohortRecord) -> dict:
    return {"id": record.id, "name": record.name, "description": record.description, "filters": record.filters,
            "groups": record.groups, "is_static": False}


def recalculate_project(
    store: CohortStore,
    project_id: int,
    data: ProjectData,
    *,
    now: datetime | None = None,
    cohort_ids: Iterable[int] | None = None,
) -> list[PublishOutcome]:
    """Compute the project's live dynamic cohorts (or only ``cohort_ids``) and publish their members."""
    project = store.get_project(project_id)
    wanted = set(cohort_ids) if cohort_ids is not None else None
    records = [
        r for r in store.list_cohorts(project_id)
        if not r.is_static and (wanted is None or r.id in wanted)
    ]
    if not records:
        return []
    specs = [CohortSpec(raw=_raw(r), definition=stored_definition(r)) for r in records]
    spec = ProjectSpec(id=project.id, name=project.name, timezone=project.timezone,
                       test_account_filters=project.test_account_filters, property_definitions={}, cohorts=specs)
    computed = {r.id for r in records}
    referenced = set().union(*(s.definition.referenced_cohort_ids() for s in specs)) - computed
    published = store.memberships_frame(storable_ids(referenced), project_id=project_id)
    started = now or datetime.now(UTC)
    result = calculate_project(spec, data, now=started, published_memberships=published)
    outcomes = []
    by_id = {r.id: r for r in records}
    for outcome in result.outcomes:
        record = by_id[outcome.cohort_id]
        pending = record.pending_version or 0
        version = pending if pending > (record.version or 0) else store.request_calculation(record.id)
        if outcome.error is not None:
            store.record_failure(record.id, version, outcome.error.message, outcome.error.error_code,
                                 started_at=started)
            outcomes.append(PublishOutcome(record.id, version, False, None, error=outcome.error.message))
            continue
        published_run = store.publish(record.id, version, result.members_of(record.id), started_at=started,
                                      finished_at=datetime.now(UTC))
        after = store.get_cohort(project_id, record.id)
        if realtime_type_after_count(after) != after.cohort_type:
            store.update_cohort(project_id, record.id, cohort_type=realtime_type_after_count(after))
        outcomes.append(PublishOutcome(record.id, version, published_run.published, published_run.count,
                                       published_run.entered, published_run.exited))
    return outcomes


__all__ = ["recalculate_project"]
