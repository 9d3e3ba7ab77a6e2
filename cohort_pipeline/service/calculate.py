"""Calculate every cohort of a project: static imports first, then one fused evaluation of the rest.

This is the use-case behind ``cohort-pipeline evaluate`` and the Dagster membership asset: it turns a validated
:class:`ProjectSpec` and the project's data into memberships plus one :class:`CohortOutcome` per cohort (its
count, or the error that stopped it). A cohort that fails never stops the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from cohort_pipeline.engine.evaluate import MEMBERSHIP_SCHEMA, evaluate_cohorts_detailed
from cohort_pipeline.errors import CalculationError, CohortValidationError
from cohort_pipeline.service.definitions_file import CohortSpec, ProjectSpec
from cohort_pipeline.sources import ProjectData
from cohort_pipeline.static import import_static_csv, match_person_ids


@dataclass(frozen=True)
class StaticImportSummary:
    """How a static population source matched persons (shown to the user and kept as run metadata)."""

    source: str
    ids_submitted: int
    persons_matched: int
    unmatched_count: int


@dataclass(frozen=True)
class CohortOutcome:
    cohort_id: int
    name: str
    is_static: bool
    count: int | None
    error: CalculationError | None = None
    static_import: StaticImportSummary | None = None


@dataclass
class ProjectResult:
    project: ProjectSpec
    memberships: pl.DataFrame
    outcomes: list[CohortOutcome] = field(default_factory=list)

    def members_of(self, cohort_id: int) -> pl.Series:
        return self.memberships.filter(pl.col("cohort_id") == cohort_id)["person_id"]


def _import_static(cohort: CohortSpec, data: ProjectData) -> tuple[list[str], StaticImportSummary] | None:
    """Members of a static cohort populated from a CSV or a person-id list; None for criteria snapshots."""
    if cohort.csv is not None:
        imported = import_static_csv(cohort.csv, data.persons, data.person_distinct_ids)
        match, source = imported.match, f"csv:{cohort.csv_name}"
    elif cohort.definition.create_static_person_ids:
        match, source = match_person_ids(cohort.definition.create_static_person_ids, data.persons), "person_ids"
    else:
        return None
    summary = StaticImportSummary(source, match.ids_submitted, match.persons_matched, match.unmatched_count)
    return match.person_ids, summary


def fail_dependents(project: ProjectSpec, failures: dict[int, CalculationError]) -> None:
    """A cohort referencing a failed one fails too (transitively), as the engine does for its own failures:
    left out of the evaluation, the failed cohort would read as an unknown id and match nobody. ``failures`` is
    updated in place; it may name cohorts that are not in ``project`` (e.g. ones whose definition did not parse)."""
    pending = True
    while pending:
        pending = False
        for cohort in project.cohorts:
            if cohort.id in failures:
                continue
            failed = sorted(cohort.definition.referenced_cohort_ids() & failures.keys())
            if failed:
                cause = failures[failed[0]]
                failures[cohort.id] = CalculationError(f"Referenced cohort {failed[0]} failed: {cause.message}",
                                                       error_code=cause.error_code, cohort_id=cohort.id)
                pending = True


def calculate_project(
    project: ProjectSpec,
    data: ProjectData,
    *,
    now: datetime,
    published_memberships: Mapping[int, list[str]] | None = None,
) -> ProjectResult:
    """Compute every cohort of ``project`` against ``data`` as of ``now``."""
    static_members: dict[int, list[str]] = {}
    summaries: dict[int, StaticImportSummary] = {}
    failures: dict[int, CalculationError] = {}
    for cohort in project.cohorts:
        if not cohort.definition.is_static:
            continue
        try:
            imported = _import_static(cohort, data)
        except CohortValidationError as error:
            failures[cohort.id] = CalculationError(str(error), error_code="validation_error", cohort_id=cohort.id)
            continue
        if imported is not None:
            static_members[cohort.id], summaries[cohort.id] = imported
    fail_dependents(project, failures)
    evaluated = evaluate_cohorts_detailed(
        [c.definition for c in project.cohorts if c.id not in failures],
        data.persons,
        data.person_distinct_ids,
        data.events,
        now=now,
        timezone=project.timezone,
        property_definitions=project.property_definitions,
        test_account_filters=project.test_account_filters,
        actions=project.actions,
        static_memberships=static_members,
        published_memberships=published_memberships,
    )
    failures.update(evaluated.errors)
    counts = evaluated.counts()
    outcomes = [
        CohortOutcome(
            cohort_id=c.id,
            name=c.name,
            is_static=c.definition.is_static,
            count=None if c.id in failures else counts.get(c.id, 0),
            error=failures.get(c.id),
            static_import=summaries.get(c.id),
        )
        for c in project.cohorts
    ]
    memberships = evaluated.memberships.filter(~pl.col("cohort_id").is_in(list(failures)))
    return ProjectResult(project, memberships.cast(MEMBERSHIP_SCHEMA), outcomes)
