"""Keeping the store in step with a definitions file, and publishing calculated memberships.

``sync_project`` makes the store hold exactly the file's project settings and cohorts (created with the file's
ids, updated when edited; editing a definition requests a recalculation as PostHog does). ``publish_project``
walks the version state machine of spec 1.3 for every cohort of a calculation: request a version, then publish
the members or record the failure, so readers only ever see complete versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cohort_pipeline.service.calculate import ProjectResult
from cohort_pipeline.service.definitions_file import CohortSpec, ProjectSpec
from cohort_pipeline.store import CohortStore, NotFoundError

_SYNCED_FIELDS = ("name", "description", "filters", "query", "groups", "is_static")


@dataclass(frozen=True)
class PublishOutcome:
    cohort_id: int
    version: int
    published: bool
    count: int | None
    entered: int = 0
    exited: int = 0
    error: str | None = None


def _cohort_fields(cohort: CohortSpec) -> dict:
    raw = cohort.raw
    return {
        "name": raw.get("name"),
        "description": raw.get("description", ""),
        "filters": raw.get("filters"),
        "query": raw.get("query"),
        "groups": raw.get("groups") or [],
        "is_static": bool(raw.get("is_static", False)),
    }


def sync_project(store: CohortStore, project: ProjectSpec) -> None:
    """Create or update the project and its cohorts in the store from the definitions file."""
    try:
        store.get_project(project.id)
        store.update_project(project.id, name=project.name, timezone=project.timezone,
                             test_account_filters=project.test_account_filters)
    except NotFoundError:
        store.create_project(project.name, timezone=project.timezone,
                             test_account_filters=project.test_account_filters, project_id=project.id)
    for cohort in project.cohorts:
        fields = _cohort_fields(cohort)
        try:
            stored = store.get_cohort(project.id, cohort.id, include_deleted=True)
        except NotFoundError:
            store.create_cohort(project.id, cohort_id=cohort.id, created_by="definitions file", **fields)
            continue
        changed = {k: v for k, v in fields.items() if getattr(stored, k) != v}
        if stored.deleted:
            changed["deleted"] = False  # in the file, so live again (a deleted cohort cannot be calculated)
        if changed:
            store.update_cohort(project.id, cohort.id, **changed)


def publish_project(
    store: CohortStore, result: ProjectResult, *, started_at: datetime, finished_at: datetime
) -> list[PublishOutcome]:
    """Request a version for every cohort of ``result`` and publish its members, or record why it failed."""
    outcomes = []
    for outcome in result.outcomes:
        version = store.request_calculation(outcome.cohort_id)
        if outcome.error is not None:
            store.record_failure(outcome.cohort_id, version, outcome.error.message, outcome.error.error_code,
                                 started_at=started_at)
            outcomes.append(PublishOutcome(outcome.cohort_id, version, False, None, error=outcome.error.message))
            continue
        published = store.publish(outcome.cohort_id, version, result.members_of(outcome.cohort_id),
                                  started_at=started_at, finished_at=finished_at)
        outcomes.append(PublishOutcome(outcome.cohort_id, version, published.published, published.count,
                                       published.entered, published.exited))
    return outcomes
