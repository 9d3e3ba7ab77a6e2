"""The minimal feature-flag registry and the cohort rules that depend on it (spec 2.3, 8.2).

A flag targets cohorts through ``cohort`` properties in its condition groups (PostHog's flag ``filters``:
``{"groups": [{"properties": [{"type": "cohort", "key": "id", "value": 7}], "rollout_percentage": 100}]}``).
Three rules follow, all with PostHog's messages and codes:

* saving a flag: every targeted cohort must exist in the project (``cohort_does_not_exist``) and neither it nor
  any cohort it depends on (static cohorts excepted) may have behavioral filters (``behavioral_cohort_found``);
* editing a cohort that an active flag uses (directly or through other cohorts): its new filters must not add
  behavioral filters, nor reference a cohort that has some (``behavioral_cohort_found``);
* soft-deleting a cohort that an active flag uses is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model import BehavioralFilter, CohortFilter, Leaf
from cohort_pipeline.service.cohort_graph import ProjectCohorts
from cohort_pipeline.store import CohortStore, FeatureFlagRecord

BEHAVIORAL_CODE: Final = "behavioral_cohort_found"
MISSING_COHORT_CODE: Final = "cohort_does_not_exist"
BEHAVIORAL_ADDED_MESSAGE: Final = "Behavioral filters cannot be added to cohorts used in feature flags."
FLAG_KEY_MESSAGE: Final = "Only letters, numbers, hyphens (-) & underscores (_) are allowed."
FLAG_FIELDS: Final[frozenset[str]] = frozenset({"key", "name", "filters", "active", "deleted"})
FLAG_READ_ONLY: Final[frozenset[str]] = frozenset({"id", "created_at", "updated_at", "created_by"})


def flag_cohort_ids(filters: Mapping[str, Any] | None) -> list[int]:
    """Ids of the cohorts a flag's condition groups name directly, in order, without repeats."""
    ids: list[int] = []
    groups = filters.get("groups") if isinstance(filters, Mapping) else None
    for group in groups if isinstance(groups, list) else []:
        properties = group.get("properties") if isinstance(group, Mapping) else None
        for prop in properties if isinstance(properties, list) else []:
            if not isinstance(prop, Mapping) or prop.get("type") != "cohort":
                continue
            value = prop.get("value")
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool) and value not in ids:
                ids.append(value)
    return ids


def flag_reaches(flag: FeatureFlagRecord, cohort_id: int, cohorts: ProjectCohorts) -> bool:
    """PostHog's ``cohort_id in flag.get_cohort_ids(stop_traversal_at_static=True)``."""
    for target in flag_cohort_ids(flag.filters):
        if target == cohort_id or cohort_id in cohorts.dependencies(target, stop_at_static=True):
            return True
    return False


def active_flags_using(store: CohortStore, cohorts: ProjectCohorts, cohort_id: int) -> list[FeatureFlagRecord]:
    """Active, non-deleted flags of the project that use ``cohort_id`` (directly or through other cohorts)."""
    flags = store.list_feature_flags(cohorts.project_id, active_only=True)
    return [flag for flag in flags if flag_reaches(flag, cohort_id, cohorts)]


def check_cohort_edit(leaves: Iterable[Leaf], cohorts: ProjectCohorts) -> None:
    """Spec 2.3 (cohort used by an active flag): the first behavioral leaf, or the first referenced cohort with
    behavioral filters in its non-static dependency chain, is refused (``behavioral_cohort_found``)."""
    for leaf in leaves:
        if isinstance(leaf, BehavioralFilter):
            raise CohortValidationError(BEHAVIORAL_ADDED_MESSAGE, attr="filters", code=BEHAVIORAL_CODE)
        if isinstance(leaf, CohortFilter) and cohorts.live(leaf.value) is not None:
            for dependency in [leaf.value, *cohorts.dependencies(leaf.value, stop_at_static=True)]:
                record = cohorts.records[dependency]
                if record.is_static:
                    continue
                if cohorts.has_behavioral_filters(dependency):
                    raise CohortValidationError(
                        f"A cohort dependency ({record.name}) has filters based on events. These cohorts can't be "
                        "used in feature flags.",
                        attr="filters",
                        code=BEHAVIORAL_CODE,
                    )


def check_flag_targets(filters: Mapping[str, Any], cohorts: ProjectCohorts) -> None:
    """Spec 8.2, saving a flag: targeted cohorts exist (in this project) and carry no behavioral filters."""
    for target in flag_cohort_ids(filters):
        if cohorts.live(target) is None:
            raise CohortValidationError(f"Cohort with id {target} does not exist", attr="filters",
                                        code=MISSING_COHORT_CODE)
        for cohort_id in [target, *cohorts.dependencies(target, stop_at_static=True)]:
            if cohorts.records[cohort_id].is_static:
                continue
            if cohorts.has_behavioral_filters(cohort_id):
                raise CohortValidationError(
                    f"Cohort '{cohorts.records[cohort_id].name}' with filters on events cannot be used in feature "
                    "flags.",
                    attr="filters",
                    code=BEHAVIORAL_CODE,
                )


def _check_filters_shape(filters: Any) -> dict[str, Any]:
    if not isinstance(filters, Mapping):
        raise CohortValidationError("Must be a JSON object.", attr="filters")
    groups = filters.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
        raise CohortValidationError("filters.groups must be a list of condition groups", attr="filters")
    for group in groups:
        properties = group.get("properties", [])
        if not isinstance(properties, list) or not all(isinstance(p, Mapping) for p in properties):
            raise CohortValidationError("filters.groups[].properties must be a list of property filters",
                                        attr="filters")
    return dict(filters)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise CohortValidationError("This field is required." if key is None else "Not a valid string.", attr="key")
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        raise CohortValidationError(FLAG_KEY_MESSAGE, attr="key")
    return key


def _bool(value: Any, attr: str) -> bool:
    if not isinstance(value, bool):
        raise CohortValidationError("Must be a valid boolean.", attr=attr)
    return value


def _checked_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(payload) - FLAG_FIELDS - FLAG_READ_ONLY)
    if unknown:
        raise CohortValidationError(f"Extra inputs are not permitted (key '{unknown[0]}')", attr=unknown[0])
    fields: dict[str, Any] = {}
    if "key" in payload:
        fields["key"] = _check_key(payload["key"])
    if "name" in payload:
        name = payload["name"]
        fields["name"] = "" if name is None else name
    if "filters" in payload:
        fields["filters"] = _check_filters_shape(payload["filters"])
    for attr in ("active", "deleted"):
        if attr in payload:
            fields[attr] = _bool(payload[attr], attr)
    return fields


class FeatureFlagService:
    """Create, read, update and soft-delete flags of a project, enforcing spec 8.2."""

    def __init__(self, store: CohortStore) -> None:
        self.store = store

    def create(self, project_id: int, payload: Mapping[str, Any], *, created_by: str | None) -> FeatureFlagRecord:
        """A new flag; ``key`` is required, ``active`` defaults to true, ``filters`` to no conditions."""
        fields = _checked_fields(payload)
        if "key" not in fields:
            raise CohortValidationError("This field is required.", attr="key", code="required")
        fields.setdefault("filters", {"groups": []})
        check_flag_targets(fields["filters"], ProjectCohorts(self.store, project_id))
        deleted = fields.pop("deleted", False)
        record = self.store.create_feature_flag(project_id, created_by=created_by, **fields)
        if deleted:
            record = self.store.update_feature_flag(project_id, record.id, deleted=True)
        return record

    def update(self, project_id: int, flag_id: int, payload: Mapping[str, Any]) -> FeatureFlagRecord:
        """Change a flag (``{"deleted": true}`` soft-deletes it); new targets are checked like on create."""
        self.store.get_feature_flag(project_id, flag_id)  # 404 before 400
        fields = _checked_fields(payload)
        if "filters" in fields:
            check_flag_targets(fields["filters"], ProjectCohorts(self.store, project_id))
        return self.store.update_feature_flag(project_id, flag_id, **fields)

    def get(self, project_id: int, flag_id: int) -> FeatureFlagRecord:
        return self.store.get_feature_flag(project_id, flag_id)

    def list(self, project_id: int) -> list[FeatureFlagRecord]:
        return self.store.list_feature_flags(project_id)


__all__ = [
    "BEHAVIORAL_ADDED_MESSAGE",
    "BEHAVIORAL_CODE",
    "FeatureFlagService",
    "active_flags_using",
    "check_cohort_edit",
    "check_flag_targets",
    "flag_cohort_ids",
]
