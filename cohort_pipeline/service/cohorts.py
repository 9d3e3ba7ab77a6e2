"""Creating, editing and reading cohorts through PostHog's cohort API rules (spec 1, 2, 7, 8).

This is the use-case layer behind ``POST/PATCH /api/projects/{id}/cohorts/`` (and usable from the CLI): it takes
the client's cohort object (already decoded from JSON or a multipart form) plus an optional CSV upload, applies
every rule of spec 2 through ``model/`` and the project-wide checks of :mod:`.cohort_graph` and
:mod:`.feature_flags`, computes the members of static cohorts, and only then writes. A request that breaks any
rule raises before the first write, so nothing invalid is ever stored or changed.

Writes follow the version state machine of spec 1.3: creating or editing a dynamic cohort requests a calculation
(``pending_version`` + 1, ``is_calculating``) for the pipeline to pick up; a static cohort's population (CSV,
person ids, query, or a one-time snapshot of its criteria) is requested and published at once, so it has a
version, a count and a calculation-history row when the response is sent.

Divergences from PostHog (documented in docs/divergences.md):

* static populations (query, criteria snapshot) run synchronously instead of in a background task, so their
  failures are a 400 and nothing is created;
* a CSV sent for a dynamic cohort is a 400 (PostHog ignores it);
* ``_create_static_person_ids`` absent (not ``[]``) on a static cohort with no other source is PostHog's older
  400 "Invalid source for static cohort..."; an explicit ``[]`` creates an empty static cohort (newest);
* the feature-flag rule for edits applies to PUT as well as PATCH.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl

from cohort_pipeline.engine.evaluate import evaluate_cohorts_detailed
from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model import (
    CohortDefinition,
    compute_cohort_type,
    parse_cohort,
    validate_cohort_type,
    validate_no_cycles,
)
from cohort_pipeline.model.filters import filters_have_values
from cohort_pipeline.service.cohort_graph import ProjectCohorts, storable_ids
from cohort_pipeline.service.feature_flags import active_flags_using, check_cohort_edit
from cohort_pipeline.service.hogql import DEFAULT_LIMITS, QueryLimits
from cohort_pipeline.service.static_query import referenced_cohort_ids, run_cohort_query
from cohort_pipeline.sources import (
    EVENTS_SCHEMA,
    PERSON_DISTINCT_IDS_SCHEMA,
    PERSONS_SCHEMA,
    ProjectData,
    load_project,
)
from cohort_pipeline.static import import_static_csv, match_person_ids
from cohort_pipeline.store import CalculationRecord, CohortRecord, CohortStore, NotFoundError

Clock = Callable[[], datetime]

INVALID_SOURCE_MESSAGE: Final = (
    "Invalid source for static cohort. Requires criteria, a csv, feature flag, existing cohort or query."
)
STATIC_CRITERIA_MESSAGE: Final = (
    "Editing the criteria of a static cohort is not supported yet. Create a new static cohort instead."
)
CSV_FOR_DYNAMIC_MESSAGE: Final = "A CSV file can only populate a static cohort (set is_static to true)."
ADD_PERSONS_LIMIT: Final = 1000
"""Spec 8.3: ``DEFAULT_COHORT_INSERT_BATCH_SIZE``, also the maximum of ``add_persons_to_static_cohort``."""
SNAPSHOT_ID: Final = -1
"""The id a criteria snapshot is evaluated under (never a stored cohort's id)."""
WRITABLE_FIELDS: Final = ("name", "description", "filters", "query", "groups", "is_static", "deleted")

#: Spec 9.5: the text shown for the error code of a cohort's latest failed calculation.
ERROR_MESSAGES: Final[Mapping[str, str]] = {
    "capacity": "The calculation could not run because the system was busy. It will be retried automatically.",
    "interrupted": "The calculation was interrupted. It will be retried automatically.",
    "timeout": "The calculation took too long and timed out. Try simplifying the cohort's criteria.",
    "memory_limit": "The calculation needed more memory than allowed. Try simplifying the cohort's criteria.",
    "query_size": "The cohort's criteria are too large to calculate. Try simplifying them.",
    "invalid_regex": "One of the cohort's regular expressions is invalid. Please fix it and save the cohort again.",
    "no_properties": "The cohort has no criteria, so it matches nobody. Add at least one condition.",
    "flag_changed": "The feature flag changed while the cohort was being calculated. Please try again.",
}
GENERIC_ERROR_MESSAGE: Final = (
    "The cohort could not be calculated. Please review your matching criteria or contact support."
)


def last_error_message(history: list[CalculationRecord]) -> str | None:
    """PostHog's ``last_error_message``: the friendly text of the latest failed run's code (newest first)."""
    failed = next((run for run in history if run.error), None)
    if failed is None:
        return None
    return ERROR_MESSAGES.get(failed.error_code or "unknown", GENERIC_ERROR_MESSAGE)


def project_data(data_dir: Path, project_id: int) -> ProjectData:
    """A project's frames. A project without a data folder yet simply has no persons (nothing to match)."""
    if not (Path(data_dir) / f"project_{project_id}").is_dir():
        return ProjectData(
            persons=pl.LazyFrame(schema=PERSONS_SCHEMA),
            person_distinct_ids=pl.LazyFrame(schema=PERSON_DISTINCT_IDS_SCHEMA),
            events=pl.LazyFrame(schema=EVENTS_SCHEMA),
        )
    return load_project(Path(data_dir), project_id)


# ------------------------------------------------------------------------------------------- static imports


@dataclass(frozen=True)
class StaticPopulation:
    """The members a static cohort gets from one request, with PostHog's import accounting (spec 7.4)."""

    source: Literal["csv", "person_ids", "csv+person_ids", "query", "criteria", "empty"]
    person_ids: list[str]
    id_type: str | None = None
    rows_total: int | None = None
    rows_skipped: int | None = None
    ids_submitted: int | None = None
    unmatched_count: int | None = None
    unmatched_sample: list[str] = field(default_factory=list)
    persons_added: int | None = None

    def report(self) -> dict[str, Any]:
        """The accounting returned to the client as ``static_import``."""
        return {
            "source": self.source,
            "id_type": self.id_type,
            "rows_total": self.rows_total,
            "rows_skipped": self.rows_skipped,
            "ids_submitted": self.ids_submitted,
            "persons_matched": len(self.person_ids),
            "persons_added": self.persons_added,
            "unmatched_count": self.unmatched_count,
            "unmatched_sample": list(self.unmatched_sample),
        }


@dataclass(frozen=True)
class CohortResult:
    """A cohort after a create or update, and what a static population added."""

    cohort: CohortRecord
    static_import: StaticPopulation | None = None


@dataclass(frozen=True)
class _Request:
    """One create / update request after decoding."""

    payload: Mapping[str, Any]
    csv: bytes | None


class CohortService:
    """The cohort use-cases of one store and data folder (see the module docstring)."""

    def __init__(
        self,
        store: CohortStore,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        query_limits: QueryLimits = DEFAULT_LIMITS,
    ) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.query_limits = query_limits

    # ------------------------------------------------------------------------------------------- reading

    def get(self, project_id: int, cohort_id: int) -> CohortRecord:
        """A cohort of the project, soft-deleted or not (PostHog's retrieve); ``NotFoundError`` otherwise."""
        return self.store.get_cohort(project_id, cohort_id, include_deleted=True)

    def list(
        self,
        project_id: int,
        *,
        search: str | None = None,
        cohort_kind: str | None = None,
        hide_behavioral: bool = False,
    ) -> list[CohortRecord]:
        """The project's live cohorts, newest first (PostHog: ``-created_at``), filtered as the list endpoint is.

        ``search`` is a case-insensitive substring of the name (PostHog adds trigram similarity);
        ``cohort_kind`` is ``static`` or ``dynamic``; ``hide_behavioral`` drops behavioral cohorts and every cohort
        that references one (spec 8.2).
        """
        if search is not None and len(search) > 200:
            raise CohortValidationError("Search query must be 200 characters or fewer.", attr="search")
        records = self.store.list_cohorts(project_id)
        if cohort_kind in ("static", "dynamic"):
            records = [r for r in records if r.is_static == (cohort_kind == "static")]
        if search and search.strip():
            needle = search.strip().lower()
            records = [r for r in records if needle in (r.name or "").lower()]
        if hide_behavioral:
            hidden = ProjectCohorts(self.store, project_id).behavioral_ids()
            records = [r for r in records if r.id not in hidden]
        return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)

    def last_error_messages(self, records: list[CohortRecord]) -> dict[int, str | None]:
        """``last_error_message`` of each cohort (only cohorts that ever failed need a history read)."""
        return {
            r.id: last_error_message(self.store.calculation_history(r.id)) if r.errors_calculating or
            r.last_error_at else None
            for r in records
        }

    def calculation_history(self, project_id: int, cohort_id: int) -> list[CalculationRecord]:
        """Every calculation run of a cohort of the project, newest first."""
        self.get(project_id, cohort_id)
        return self.store.calculation_history(cohort_id, limit=2**62)

    # ------------------------------------------------------------------------------------------- creating

    def create(
        self,
        project_id: int,
        payload: Mapping[str, Any],
        *,
        csv: bytes | None = None,
        created_by: str | None = None,
    ) -> CohortResult:
        """Validate and create a cohort (spec 2.1, 2.2, 7.1); populate it when static, request it when dynamic."""
        self.store.get_project(project_id)
        definition = parse_cohort(payload)
        cohorts = ProjectCohorts(self.store, project_id)
        if definition.cohort_type:
            validate_cohort_type(definition, cohorts.lookup())
        if csv is not None and not definition.is_static:
            raise CohortValidationError(CSV_FOR_DYNAMIC_MESSAGE, attr="csv")
        population: StaticPopulation | None = None
        if definition.is_static:
            population = self._static_population(project_id, definition, _Request(payload, csv), create=True)
            cohort_type = definition.cohort_type
        elif definition.filters is not None:
            cohort_type = compute_cohort_type(definition, cohorts.types)
        else:
            cohort_type = definition.cohort_type
        record = self.store.create_cohort(
            project_id,
            name=definition.name,
            description=definition.description,
            filters=payload.get("filters"),
            query=payload.get("query"),
            groups=definition.groups,
            is_static=definition.is_static,
            cohort_type=cohort_type,
            created_by=created_by,
        )
        if definition.deleted:
            record = self.store.soft_delete(project_id, record.id)
        elif population is not None:
            population = self._publish_population(record, population)
        else:
            self.store.request_calculation(record.id)
        return CohortResult(self.get(project_id, record.id), population)

    # ------------------------------------------------------------------------------------------- updating

    def update(
        self,
        project_id: int,
        cohort_id: int,
        payload: Mapping[str, Any],
        *,
        csv: bytes | None = None,
    ) -> CohortResult:
        """Validate and apply a PATCH / PUT (spec 2.1, 2.3); recalculate dynamic cohorts, append static ones."""
        record = self.get(project_id, cohort_id)
        cohorts = ProjectCohorts(self.store, project_id)
        sent = dict(payload)
        checked = parse_cohort({**sent, "is_static": sent.get("is_static", record.is_static)})
        will_be_static = checked.is_static
        merged = {
            "name": record.name, "description": record.description, "filters": record.filters,
            "query": record.query, "groups": record.groups, **{k: sent[k] for k in WRITABLE_FIELDS if k in sent},
            "is_static": will_be_static,
        }
        effective = parse_cohort({**merged, "id": cohort_id}, internal=True)
        if checked.cohort_type:
            effective.cohort_type = checked.cohort_type
            validate_cohort_type(effective, cohorts.lookup())

        self._check_flag_rules(record, sent, checked, effective, cohorts)
        filters_changed = "filters" in sent and sent["filters"] != record.filters
        if will_be_static and filters_changed and (
            filters_have_values(record.filters) or filters_have_values(sent["filters"])
        ):
            raise CohortValidationError(STATIC_CRITERIA_MESSAGE)
        deleting = "deleted" in sent and checked.deleted and not record.deleted
        if deleting:
            self._check_deletion(record, cohorts)
        validate_no_cycles(cohort_id, effective, cohorts.definitions)

        deleted_after = checked.deleted if "deleted" in sent else record.deleted
        population: StaticPopulation | None = None
        if csv is not None and not will_be_static:
            raise CohortValidationError(CSV_FOR_DYNAMIC_MESSAGE, attr="csv")
        if will_be_static and not deleted_after and (csv is not None or sent.get("query")):
            population = self._static_population(project_id, effective, _Request(sent, csv), create=False)

        changes: dict[str, Any] = {k: merged[k] for k in WRITABLE_FIELDS if k in sent and k != "deleted"}
        if "name" in changes:
            changes["name"] = checked.name
        if "description" in changes:
            changes["description"] = checked.description
        if "groups" in changes:
            changes["groups"] = checked.groups
        if "is_static" in sent:
            changes["is_static"] = will_be_static
        if "deleted" in sent:
            changes["deleted"] = checked.deleted
        changes["cohort_type"] = self._cohort_type_after_update(record, checked, effective, will_be_static, cohorts)
        updated = self.store.update_cohort(project_id, cohort_id, **changes)
        if not updated.deleted:
            if population is not None:
                population = self._publish_population(updated, population)
            elif not will_be_static:
                self.store.request_calculation(cohort_id)
        return CohortResult(self.get(project_id, cohort_id), population)

    @staticmethod
    def _cohort_type_after_update(
        record: CohortRecord,
        checked: CohortDefinition,
        effective: CohortDefinition,
        will_be_static: bool,
        cohorts: ProjectCohorts,
    ) -> str | None:
        """Dynamic cohorts with filters: recomputed (spec 1.2(b), with the count limit); otherwise the validated
        value the client sent, else the stored one (a static cohort is never ``realtime``)."""
        if not will_be_static and effective.filters is not None:
            return compute_cohort_type(effective, cohorts.types, record.count)
        current = checked.cohort_type or record.cohort_type
        return None if will_be_static and current == "realtime" else current

    def _check_flag_rules(
        self,
        record: CohortRecord,
        sent: Mapping[str, Any],
        checked: CohortDefinition,
        effective: CohortDefinition,
        cohorts: ProjectCohorts,
    ) -> None:
        """Spec 2.3: a cohort an active flag uses may not gain behavioral filters (also through references and
        when flipping static -> dynamic)."""
        if checked.is_static and record.is_static:
            return
        criteria_sent = "filters" in sent or "groups" in sent
        flipping = record.is_static and not checked.is_static
        if not criteria_sent and not flipping:
            return
        if not active_flags_using(self.store, cohorts, record.id):
            return
        source = checked if criteria_sent and checked.effective_filters() is not None else effective
        check_cohort_edit(source.leaves(), cohorts)

    def _check_deletion(self, record: CohortRecord, cohorts: ProjectCohorts) -> None:
        """Spec 2.3: a cohort in use (active flags, the project's test-account filters, other cohorts' criteria)
        cannot be soft-deleted."""
        flags = active_flags_using(self.store, cohorts, record.id)
        if flags:
            names = ", ".join(flag.name or flag.key for flag in flags)
            raise CohortValidationError(
                f"This cohort is used in {len(flags)} active feature flag(s): {names}. Please remove the cohort "
                "from these feature flags before deleting it."
            )
        project = self.store.get_project(record.project_id)
        if any(
            isinstance(f, Mapping) and f.get("type") == "cohort" and f.get("value") == record.id
            for f in project.test_account_filters
        ):
            raise CohortValidationError(
                f"This cohort is used in 'Filter out internal and test users' for 1 environment(s): {project.name}. "
                "Please remove the cohort from these test account filters before deleting it."
            )
        dependents = cohorts.dependents(record.id)
        if dependents:
            names = ", ".join(d.name or "Unnamed" for d in dependents[:5])
            if len(dependents) > 5:
                names = f"{names}, and {len(dependents) - 5} more"
            raise CohortValidationError(
                f"This cohort is used as criteria in {len(dependents)} other cohort(s): {names}. Please remove this "
                "cohort from those cohort definitions before deleting it."
            )

    # ---------------------------------------------------------------------------------- static populations

    def _data(self, project_id: int) -> ProjectData:
        return project_data(self.data_dir, project_id)

    def _published(self, project_id: int, ids: set[int]) -> pl.DataFrame:
        """What referenced cohorts contribute (spec 6.1), read from the store for this project only."""
        return self.store.memberships_frame(storable_ids(ids), project_id=project_id)

    def _static_population(
        self, project_id: int, definition: CohortDefinition, request: _Request, *, create: bool
    ) -> StaticPopulation:
        """Spec 7.1's precedence: CSV and/or person ids; else the query; else a snapshot of the criteria; else
        an explicit empty list; else 400. On update only a CSV or a new query adds members."""
        payload = request.payload
        sent_person_ids = create and "_create_static_person_ids" in payload
        person_ids = definition.create_static_person_ids if sent_person_ids else None
        if request.csv is not None or person_ids:
            return self._from_ids(project_id, request.csv, person_ids or [])
        if payload.get("query"):
            return self._from_query(project_id, payload["query"])
        if create and filters_have_values(payload.get("filters")):
            return self._from_criteria(project_id, definition)
        if create and person_ids is not None:
            return StaticPopulation(source="empty", person_ids=[])
        raise CohortValidationError(INVALID_SOURCE_MESSAGE)

    def _from_ids(self, project_id: int, csv: bytes | None, person_ids: list[str]) -> StaticPopulation:
        data = self._data(project_id)
        members: set[str] = set()
        report: dict[str, Any] = {}
        unmatched: list[str] = []
        unmatched_count = 0
        submitted = 0
        if csv is not None:
            imported = import_static_csv(csv, data.persons, data.person_distinct_ids)
            members |= set(imported.person_ids)
            report = {"id_type": imported.parsed.id_type, "rows_total": imported.parsed.rows_total,
                      "rows_skipped": imported.parsed.rows_skipped}
            unmatched += imported.match.unmatched_sample
            unmatched_count += imported.match.unmatched_count
            submitted += imported.match.ids_submitted
        if person_ids:
            matched = match_person_ids(person_ids, data.persons)
            members |= set(matched.person_ids)
            unmatched += matched.unmatched_sample
            unmatched_count += matched.unmatched_count
            submitted += matched.ids_submitted
            report.setdefault("id_type", "person_id")
        source = "csv+person_ids" if csv is not None and person_ids else "csv" if csv is not None else "person_ids"
        return StaticPopulation(
            source=source,  # type: ignore[arg-type]
            person_ids=sorted(members),
            ids_submitted=submitted,
            unmatched_count=unmatched_count,
            unmatched_sample=unmatched[:50],
            **report,
        )

    def _from_query(self, project_id: int, query: Any) -> StaticPopulation:
        if not isinstance(query, Mapping):
            raise CohortValidationError("Query must be a dictionary.", attr="query")
        project = self.store.get_project(project_id)
        ids = run_cohort_query(
            query,
            self._data(project_id),
            now=self.clock(),
            timezone=project.timezone,
            published_memberships=self._published(project_id, referenced_cohort_ids(query)),
            limits=self.query_limits,
        )
        return StaticPopulation(source="query", person_ids=ids)

    def _from_criteria(self, project_id: int, definition: CohortDefinition) -> StaticPopulation:
        """A one-time snapshot of the criteria (spec 7.1 step 4), evaluated now with the batch engine."""
        project = self.store.get_project(project_id)
        data = self._data(project_id)
        snapshot = definition.model_copy(update={"id": SNAPSHOT_ID, "is_static": False})
        result = evaluate_cohorts_detailed(
            [snapshot], data.persons, data.person_distinct_ids, data.events,
            now=self.clock(), timezone=project.timezone, test_account_filters=project.test_account_filters,
            published_memberships=self._published(project_id, definition.referenced_cohort_ids()),
        )
        if result.errors:
            error = next(iter(result.errors.values()))
            raise CohortValidationError(f"Could not calculate the cohort's criteria: {error.message}",
                                        attr="filters")
        return StaticPopulation(source="criteria", person_ids=result.memberships["person_id"].to_list())

    def _publish_population(self, record: CohortRecord, population: StaticPopulation) -> StaticPopulation:
        """Request a version and publish the members (static publish appends; spec 1.3, 7.4)."""
        started = self.clock()
        version = self.store.request_calculation(record.id)
        published = self.store.publish(record.id, version, population.person_ids, started_at=started,
                                       finished_at=self.clock())
        return replace(population, persons_added=published.entered)

    # ------------------------------------------------------------------------------------ static members

    def add_persons(self, project_id: int, cohort_id: int, body: Mapping[str, Any]) -> int:
        """``add_persons_to_static_cohort`` (spec 2.4, 7.5); returns how many persons were new members."""
        record = self.get(project_id, cohort_id)
        if not record.is_static:
            raise CohortValidationError("Can only add users to static cohorts")
        _only_keys(body, {"person_ids"})
        person_ids = body.get("person_ids")
        if not isinstance(person_ids, list):
            raise CohortValidationError("person_ids must be a list")
        if not person_ids:
            raise CohortValidationError("person_ids cannot be empty")
        if len(person_ids) > ADD_PERSONS_LIMIT:
            raise CohortValidationError("List size exceeds limit")
        candidates = [p for p in person_ids if isinstance(p, str) and "\x00" not in p]
        matched = match_person_ids(candidates, self._data(project_id).persons) if candidates else None
        if matched is None or not matched.person_ids:
            raise CohortValidationError("No valid users to add to cohort")
        return self.store.add_static_members(cohort_id, matched.person_ids)

    def remove_person(self, project_id: int, cohort_id: int, body: Mapping[str, Any]) -> bool:
        """``remove_person_from_static_cohort`` (spec 2.4): idempotent; an unknown person is a 404."""
        record = self.get(project_id, cohort_id)
        if not record.is_static:
            raise CohortValidationError("Can only remove users from static cohorts")
        _only_keys(body, {"person_id"})
        person_id = body.get("person_id")
        if not person_id:
            raise CohortValidationError("person_id is required")
        if not isinstance(person_id, str):
            raise CohortValidationError("person_id must be a string")
        if not _is_uuid(person_id):
            raise CohortValidationError("person_id must be a valid UUID")
        persons = self._data(project_id).persons
        exists = persons.filter(pl.col("id").cast(pl.String) == person_id).select(pl.len()).collect().item()
        if not exists:
            raise PersonNotFoundError("Person with this UUID does not exist in the cohort's team")
        return self.store.remove_static_member(cohort_id, person_id)

    # --------------------------------------------------------------------------------------------- persons

    def persons(self, project_id: int, cohort_id: int, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """One page of a cohort's members as PostHog's serialized persons, newest persons first (PostHog orders
        the persons endpoint by ``created_at DESC, id DESC``). Members no longer in the data are left out."""
        self.get(project_id, cohort_id)
        members = self.store.members(cohort_id)
        if not members:
            return []
        data = self._data(project_id)
        member_frame = pl.LazyFrame({"id": members}, schema={"id": pl.String})
        page = (
            data.persons.select(pl.col("id").cast(pl.String), "created_at", "properties")
            .join(member_frame, on="id", how="semi")
            .sort(["created_at", "id"], descending=[True, True], nulls_last=True)
            .slice(offset, limit)
            .collect()
        )
        if page.is_empty():
            return []
        distinct_ids = (
            data.person_distinct_ids.select(pl.col("person_id").cast(pl.String), pl.col("distinct_id").cast(pl.String))
            .join(page.lazy().select(pl.col("id").alias("person_id")), on="person_id", how="semi")
            .group_by("person_id")
            .agg(pl.col("distinct_id").sort().head(10))
            .collect()
        )
        by_person = dict(zip(distinct_ids["person_id"].to_list(), distinct_ids["distinct_id"].to_list(), strict=True))
        return [_serialized_person(row, by_person.get(row["id"], [])) for row in page.iter_rows(named=True)]


class PersonNotFoundError(NotFoundError):
    """A person id that is not a person of the project (PostHog answers 404 with this detail)."""

    def __init__(self, detail: str) -> None:
        super().__init__("person", detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


def _only_keys(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise CohortValidationError(f"Extra inputs are not permitted (key '{unknown[0]}')", attr=unknown[0])


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _properties(text: str | None) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _serialized_person(row: Mapping[str, Any], distinct_ids: list[str]) -> dict[str, Any]:
    """PostHog's ``SerializedPerson`` (``get_serialized_people``): name from email / name / username, else the
    first distinct id, else the id."""
    properties = _properties(row["properties"])
    name = next(
        (str(properties[k]) for k in ("email", "name", "username") if properties.get(k)),
        distinct_ids[0] if distinct_ids else row["id"],
    )
    created_at = row["created_at"]
    return {
        "id": row["id"],
        "uuid": row["id"],
        "type": "person",
        "name": name,
        "distinct_ids": distinct_ids,
        "properties": properties,
        "created_at": created_at.isoformat().replace("+00:00", "Z") if created_at is not None else None,
        "last_seen_at": None,
        "is_identified": None,
        "matched_recordings": [],
        "value_at_data_point": None,
    }


__all__ = [
    "ADD_PERSONS_LIMIT",
    "CohortResult",
    "CohortService",
    "PersonNotFoundError",
    "StaticPopulation",
    "last_error_message",
    "project_data",
]
