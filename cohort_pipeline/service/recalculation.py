"""Recalculate a set of cohorts as one run: evaluate, validate, publish (ARCHITECTURE "one recalculation").

This is the use-case behind the partitioned ``cohort_membership`` asset (one partition per cohort, many per run)
and ``cohort-pipeline run``. For each project of the run:

1. **Versions** (spec 1.3): a cohort arrives with the version requested for it when the run was requested (by a
   sensor or the schedule), or requests one now (a run launched from the UI). A run whose version is no longer
   the newest requested one is *obsolete* and stops for that cohort without touching anything.
2. **Definitions** come from the store (what the API and the definitions-file sync wrote); project settings the
   store does not keep (declared property definitions, actions, CSV / person-id sources of static cohorts) come
   from the last valid definitions snapshot. A stored definition that no longer parses fails its cohort.
3. **One fused evaluation** of every cohort of the run (``calculate_project``): cohorts of the run are inlined in
   dependency order, referenced cohorts outside the run are read from their published version. Static cohorts are
   imported when they have never been populated, or when persons were added since their last import (a CSV id
   that matched nobody may match now); otherwise they are reported ``unchanged`` and left alone.
4. **Quality checks** (Great Expectations, :mod:`cohort_pipeline.quality`) on the whole candidate membership; a
   cohort an ERROR check concerns is not published, and neither is any cohort of the run computed from it.
5. **Publish** in dependency order (dependencies first), each cohort in its own atomic store transaction; every
   failure (bad definition, missing or malformed data, failed dependency, failed check) is recorded in the
   calculation history with ``errors_calculating + 1`` and leaves the published version untouched.

A failure never stops the other cohorts of the run; the report lists every cohort's outcome and the caller (the
asset) fails the run when any cohort failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from cohort_pipeline.errors import CalculationError, CohortPipelineError, CohortValidationError
from cohort_pipeline.model import parse_cohort
from cohort_pipeline.quality import MembershipValidation, Severity, validate_membership
from cohort_pipeline.quality import warm_up as warm_up_quality_checks
from cohort_pipeline.service.calculate import ProjectResult, StaticImportSummary, calculate_project, fail_dependents
from cohort_pipeline.service.cohort_graph import storable_ids
from cohort_pipeline.service.cohort_keys import CohortKey, by_project
from cohort_pipeline.service.data_files import persons_changed_at
from cohort_pipeline.service.definitions_file import CohortSpec, ProjectSpec
from cohort_pipeline.service.definitions_snapshot import DefinitionsSnapshot
from cohort_pipeline.sources import ProjectData, load_project
from cohort_pipeline.store import CohortRecord, CohortStore, NotFoundError, StoreError

Status = Literal["published", "unchanged", "superseded", "obsolete", "skipped", "failed"]
PREVIEW_MEMBERS = 5
"""Members shown in a materialization's markdown preview."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CheckOutcome:
    """One quality check as it concerns one cohort."""

    name: str
    severity: Severity
    passed: bool
    description: str
    metadata: Mapping[str, int | str]


@dataclass(frozen=True)
class CohortOutcome:
    """What the run did with one cohort.

    ``published``: a new version is what readers see. ``unchanged``: a static cohort that was not re-imported.
    ``superseded``: computed, but a newer version had been published meanwhile (nothing changed). ``obsolete``:
    a newer run was requested before this one started (nothing computed). ``skipped``: the cohort is deleted, or no
    longer in the store (a partition key can outlive its cohort). ``failed``: see ``error``.
    """

    key: CohortKey
    name: str
    is_static: bool
    status: Status
    version: int | None = None
    previous_version: int | None = None
    count: int | None = None
    previous_count: int | None = None
    entered: int | None = None
    exited: int | None = None
    error: str | None = None
    error_code: str | None = None
    reason: str | None = None
    static_import: StaticImportSummary | None = None
    checks: tuple[CheckOutcome, ...] = ()
    preview: tuple[Mapping[str, str | None], ...] = ()

    @property
    def cohort_id(self) -> int:
        return self.key.cohort_id

    def describe(self) -> str:
        """One line for the run log."""
        head = f"{self.key} ({self.name})"
        if self.status == "published":
            diff = f" (+{self.entered} / -{self.exited})" if self.entered is not None else ""
            return f"{head}: published version {self.version}, {self.count:,} members{diff}"
        if self.status == "failed":
            return f"{head}: failed: {self.error}"
        return f"{head}: {self.status}: {self.reason}"


@dataclass
class RecalculationReport:
    """Every cohort's outcome, plus the quality validation of each project's candidate membership."""

    as_of: datetime
    outcomes: list[CohortOutcome] = field(default_factory=list)
    validations: dict[int, MembershipValidation] = field(default_factory=dict)

    def with_status(self, *statuses: Status) -> list[CohortOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def failed(self) -> list[CohortOutcome]:
        return self.with_status("failed")

    @property
    def all_handled(self) -> bool:
        """Every cohort of the run was published or deliberately left unchanged."""
        return all(o.status in ("published", "unchanged") for o in self.outcomes)

    def failure_description(self) -> str:
        """The run's failure message: how many failed, then one line per failed cohort."""
        failed = self.failed
        others = [o for o in self.outcomes if o.status != "failed"]
        if not others:
            tail = "nothing was published"
        elif all(o.status in ("published", "unchanged") for o in others):
            tail = "the others were published"
        else:
            tail = f"{len(self.with_status('published'))} were published"
        lines = [f"cohort {o.cohort_id} ({o.name}): {o.error}" for o in failed]
        return f"{len(failed)} of {len(self.outcomes)} cohorts failed; {tail}.\n" + "\n".join(lines)


def reimportable(source: CohortSpec | None) -> bool:
    """Whether a static cohort has an id list (CSV or person ids in the definitions file) to match again."""
    return source is not None and (source.csv is not None or bool(source.definition.create_static_person_ids))


def static_import_reason(record: CohortRecord, source: CohortSpec | None, persons_at: datetime | None) -> str | None:
    """Why a static cohort must be (re-)imported now, or ``None`` to leave it alone.

    Static cohorts are computed once, when created, and again only when persons were added since (a CSV or
    person-id list may name persons that did not exist yet). A criteria snapshot is a one-time copy and is not
    re-taken; a cohort populated through the API has no source the pipeline can re-read.
    """
    if record.version is None:
        return "first population"
    if not reimportable(source) or persons_at is None:
        return None
    if record.last_calculation is None or persons_at > record.last_calculation:
        return "persons were added since the last import"
    return None


def _stored_raw(record: CohortRecord) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "description": record.description, "filters": record.filters,
            "query": record.query, "groups": record.groups, "is_static": record.is_static}


def _publish_order(specs: Sequence[CohortSpec]) -> list[int]:
    """Cohort ids with every in-run dependency before its dependents (input order otherwise)."""
    ids = [s.id for s in specs]
    refs = {s.id: s.definition.referenced_cohort_ids() & set(ids) for s in specs}
    ordered: list[int] = []
    done: set[int] = set()

    def visit(cohort_id: int, path: tuple[int, ...]) -> None:
        if cohort_id in done or cohort_id in path:  # a stored cycle: the engine fails those cohorts anyway
            return
        for ref in sorted(refs[cohort_id]):
            visit(ref, (*path, cohort_id))
        done.add(cohort_id)
        ordered.append(cohort_id)

    for cohort_id in ids:
        visit(cohort_id, ())
    return ordered


def _preview(persons: pl.LazyFrame, members: Mapping[int, list[str]]) -> dict[int, tuple[dict[str, str | None], ...]]:
    """A few members of each cohort with their email and name (from the persons' properties), for metadata."""
    wanted = sorted({pid for ids in members.values() for pid in ids})
    if not wanted:
        return {cid: () for cid in members}
    rows = persons.filter(pl.col("id").is_in(wanted)).select("id", "properties").collect()
    properties: dict[str, dict[str, Any]] = {}
    for person_id, document in rows.iter_rows():
        try:
            decoded = json.loads(document) if document else {}
        except ValueError:
            decoded = {}
        properties[person_id] = decoded if isinstance(decoded, dict) else {}
    preview = {}
    for cohort_id, ids in members.items():
        preview[cohort_id] = tuple(
            {"person_id": pid, "email": _text(properties.get(pid, {}).get("email")),
             "name": _text(properties.get(pid, {}).get("name"))}
            for pid in ids
        )
    return preview


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class _ProjectRun:
    """The recalculation of one project's cohorts within a run."""

    def __init__(self, store: CohortStore, project_id: int, keys: list[CohortKey], *, data_dir: Path,
                 snapshot: DefinitionsSnapshot, versions: Mapping[CohortKey, int], as_of: datetime,
                 clock: Callable[[], datetime]) -> None:
        self.store, self.project_id, self.keys = store, project_id, keys
        self.data_dir, self.snapshot, self.versions, self.as_of, self.clock = (
            data_dir, snapshot, versions, as_of, clock)
        self.outcomes: dict[int, CohortOutcome] = {}
        self.validation: MembershipValidation | None = None

    # ---- outcomes -----------------------------------------------------------------------------------------

    def _skip(self, key: CohortKey, name: str, reason: str, is_static: bool = False) -> None:
        self.outcomes[key.cohort_id] = CohortOutcome(key, name, is_static, "skipped", reason=reason)

    # ---- the run ------------------------------------------------------------------------------------------

    def run(self) -> list[CohortOutcome]:
        try:
            project = self.store.get_project(self.project_id)
        except NotFoundError:
            for key in self.keys:
                self._skip(key, "Untitled cohort", f"project {self.project_id} does not exist")
            return self._ordered()
        started = self.clock()
        records = {r.id: r for r in self.store.list_cohorts(self.project_id, include_deleted=True)}
        file_project = self.snapshot.project(self.project_id)
        file_cohorts = {c.id: c for c in file_project.cohorts} if file_project else {}
        persons_at = persons_changed_at(self.data_dir, self.project_id)

        runs: dict[int, tuple[CohortRecord, int]] = {}
        for key in self.keys:
            record = records.get(key.cohort_id)
            if record is None:
                self._skip(key, "Untitled cohort", f"no cohort {key.cohort_id} in project {self.project_id}")
                continue
            name = record.name or "Untitled cohort"
            if record.deleted:
                self._skip(key, name, "the cohort is deleted; deleted cohorts are not calculated", record.is_static)
                continue
            requested = self.versions.get(key)
            if record.is_static and requested is None:
                reason = static_import_reason(record, file_cohorts.get(record.id), persons_at)
                if reason is None:
                    why = ("static cohort already imported; its id list is matched again only when persons are added"
                           if reimportable(file_cohorts.get(record.id)) else
                           "static cohort populated once (a criteria snapshot or an API population is not re-taken)")
                    self.outcomes[record.id] = CohortOutcome(
                        key, name, True, "unchanged", version=record.version, count=record.count,
                        previous_count=record.count, reason=why)
                    continue
            if requested is not None and self.store.is_obsolete(record.id, requested):
                self.outcomes[record.id] = CohortOutcome(
                    key, name, record.is_static, "obsolete", version=requested, count=record.count,
                    reason=f"version {requested} is obsolete: a newer calculation was requested")
                continue
            try:
                version = requested if requested is not None else self.store.request_calculation(record.id)
            except NotFoundError:  # deleted since the list was read
                self._skip(key, name, "the cohort is deleted; deleted cohorts are not calculated", record.is_static)
                continue
            runs[record.id] = (record, version)
        if runs:
            self._calculate(project, runs, file_project, file_cohorts, started)
        return self._ordered()

    def _ordered(self) -> list[CohortOutcome]:
        return [self.outcomes[k.cohort_id] for k in self.keys if k.cohort_id in self.outcomes]

    def _calculate(self, project: Any, runs: dict[int, tuple[CohortRecord, int]], file_project: ProjectSpec | None,
                   file_cohorts: dict[int, CohortSpec], started: datetime) -> None:
        failures: dict[int, CalculationError] = {}
        specs: list[CohortSpec] = []
        for cohort_id, (record, _version) in runs.items():
            if record.is_static and cohort_id in file_cohorts:
                specs.append(file_cohorts[cohort_id])  # its CSV / person ids live in the definitions snapshot
                continue
            if record.is_static and not (record.filters or record.groups):
                failures[cohort_id] = CalculationError(
                    "static cohort has no population source the pipeline can re-run (no CSV or person ids in the "
                    "definitions file, no criteria)", error_code="validation_error", cohort_id=cohort_id)
                continue
            raw = _stored_raw(record)
            try:
                definition = parse_cohort(raw, internal=True)
            except CohortValidationError as error:
                failures[cohort_id] = CalculationError(f"invalid definition: {error}", error_code="validation_error",
                                                       cohort_id=cohort_id)
                continue
            specs.append(CohortSpec(raw=raw, definition=definition))
        spec = ProjectSpec(
            id=project.id, name=project.name, timezone=project.timezone,
            test_account_filters=project.test_account_filters,
            property_definitions=file_project.property_definitions if file_project else {},
            cohorts=specs, actions=file_project.actions if file_project else [],
        )
        fail_dependents(spec, failures)
        computable = [s for s in specs if s.id not in failures]
        result: ProjectResult | None = None
        data: ProjectData | None = None
        if computable:
            # the quality checks come next: Great Expectations' import (2-3 s of Python) overlaps the engine
            warm_up_quality_checks()
            try:
                data = load_project(self.data_dir, self.project_id)
                computed = {s.id for s in computable}
                referenced = set().union(*(s.definition.referenced_cohort_ids() for s in computable)) - computed
                published = self.store.memberships_frame(storable_ids(referenced), project_id=self.project_id)
                result = calculate_project(
                    ProjectSpec(spec.id, spec.name, spec.timezone, spec.test_account_filters,
                                spec.property_definitions, computable, spec.actions),
                    data, now=self.as_of, published_memberships=published)
            except (CohortPipelineError, pl.exceptions.PolarsError, OSError) as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                for s in computable:
                    failures[s.id] = CalculationError(message, error_code="unknown", cohort_id=s.id)
        outcomes = {o.cohort_id: o for o in result.outcomes} if result else {}
        for cohort_id, outcome in outcomes.items():
            if outcome.error is not None:
                failures[cohort_id] = outcome.error
        checks: dict[int, tuple[CheckOutcome, ...]] = {}
        if result is not None and data is not None:
            checks = self._validate(result, data, runs, failures)
            fail_dependents(spec, failures)  # computed from a candidate that was refused
        finished = self.clock()
        previews: dict[int, tuple[dict[str, str | None], ...]] = {}
        if result is not None and data is not None:
            publishable = {cid: result.members_of(cid).head(PREVIEW_MEMBERS).to_list()
                           for cid in outcomes if cid not in failures}
            previews = _preview(data.persons, publishable)
        for cohort_id in _publish_order(specs):
            if cohort_id in failures:
                continue
            record, version = runs[cohort_id]
            try:
                self._publish(record, version, result, outcomes[cohort_id].static_import, checks.get(cohort_id, ()),
                              previews.get(cohort_id, ()), started, finished)
            except (StoreError, CohortValidationError) as error:
                failures[cohort_id] = CalculationError(f"publishing failed: {error}", cohort_id=cohort_id)
                fail_dependents(spec, failures)  # dependents come later in the publish order
        for cohort_id, error in failures.items():
            if cohort_id not in runs:
                continue
            record, version = runs[cohort_id]
            self.store.record_failure(cohort_id, version, error.message, error.error_code, started_at=started)
            outcome = outcomes.get(cohort_id)
            self.outcomes[cohort_id] = CohortOutcome(
                CohortKey(self.project_id, cohort_id), record.name or "Untitled cohort", record.is_static, "failed",
                version=version, previous_version=record.version, previous_count=record.count,
                error=error.message, error_code=error.error_code,
                static_import=outcome.static_import if outcome else None, checks=checks.get(cohort_id, ()))

    def _validate(self, result: ProjectResult, data: ProjectData, runs: dict[int, tuple[CohortRecord, int]],
                  failures: dict[int, CalculationError]) -> dict[int, tuple[CheckOutcome, ...]]:
        """Validate every computed cohort's candidate in one pass; refused cohorts join ``failures``."""
        ok = [o for o in result.outcomes if o.error is None and o.cohort_id not in failures]
        if not ok:
            return {}
        ids = [o.cohort_id for o in ok]
        candidate = result.memberships.filter(pl.col("cohort_id").is_in(ids))
        try:
            validation = validate_membership(
                candidate,
                known_person_ids=data.persons,
                expected_counts={o.cohort_id: int(o.count or 0) for o in ok},
                previous_counts={cid: runs[cid][0].count if runs[cid][0].version is not None else None
                                 for cid in ids},
                realtime_cohort_ids={cid for cid in ids if runs[cid][0].cohort_type == "realtime"},
            )
        except Exception as error:  # noqa: BLE001 - when the checks cannot run, nothing is published
            for cid in ids:
                failures[cid] = CalculationError(f"quality checks could not run: {error}",
                                                 error_code="validation_error", cohort_id=cid)
            return {}
        self.validation = validation
        for cid in validation.failed_cohort_ids & set(ids):
            failures[cid] = CalculationError(validation.failure_message(cid) or "Quality checks failed",
                                             error_code="validation_error", cohort_id=cid)
        per_cohort: dict[int, tuple[CheckOutcome, ...]] = {}
        for cid in ids:
            per_cohort[cid] = tuple(
                CheckOutcome(
                    name=check.name, severity=check.severity,
                    passed=check.success or cid not in check.cohort_ids,
                    description=check.description if not check.success and cid in check.cohort_ids
                    else _passed_text(check.name),
                    metadata=check.to_metadata(),
                )
                for check in validation.checks
            )
        return per_cohort

    def _publish(self, record: CohortRecord, version: int, result: ProjectResult | None,
                 static_import: StaticImportSummary | None, checks: tuple[CheckOutcome, ...],
                 preview: tuple[dict[str, str | None], ...], started: datetime, finished: datetime) -> None:
        assert result is not None
        members = result.members_of(record.id)
        published = self.store.publish(record.id, version, members, started_at=started, finished_at=finished,
                                       filters=record.filters)
        key = CohortKey(self.project_id, record.id)
        name = record.name or "Untitled cohort"
        if published.published:
            self.outcomes[record.id] = CohortOutcome(
                key, name, record.is_static, "published", version=published.version,
                previous_version=published.previous_version, count=published.count, previous_count=record.count,
                entered=published.entered, exited=published.exited, static_import=static_import, checks=checks,
                preview=preview)
        else:
            self.outcomes[record.id] = CohortOutcome(
                key, name, record.is_static, "superseded", version=version,
                previous_version=published.previous_version, count=record.count, previous_count=record.count,
                static_import=static_import, checks=checks,
                reason=f"version {published.previous_version} was published meanwhile by a newer run")


def _passed_text(check_name: str) -> str:
    return f"{check_name}: passed for this cohort"


def recalculate(
    store: CohortStore,
    keys: Iterable[CohortKey],
    *,
    data_dir: Path,
    snapshot: DefinitionsSnapshot,
    versions: Mapping[CohortKey, int] | None = None,
    as_of: datetime | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RecalculationReport:
    """Recalculate the cohorts named by ``keys`` (one fused evaluation per project) and publish each one.

    ``versions`` are the versions requested when the run was requested (sensors, schedule); a cohort without one
    requests its version now. ``as_of`` evaluates relative dates and behavioural windows at that instant (default:
    now) to reproduce a past membership; the result is published like any other run.
    """
    as_of = as_of or clock()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    report = RecalculationReport(as_of=as_of)
    versions = versions or {}
    for project_id, project_keys in by_project(keys).items():
        project_run = _ProjectRun(store, project_id, project_keys, data_dir=Path(data_dir), snapshot=snapshot,
                                  versions=versions, as_of=as_of, clock=clock)
        report.outcomes.extend(project_run.run())
        if project_run.validation is not None:
            report.validations[project_id] = project_run.validation
    return report


__all__ = [
    "PREVIEW_MEMBERS",
    "CheckOutcome",
    "CohortOutcome",
    "RecalculationReport",
    "recalculate",
    "reimportable",
    "static_import_reason",
]
