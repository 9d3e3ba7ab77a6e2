"""The cohort definitions file: projects, their settings and their cohorts as PostHog JSON.

Format (JSON)::

    {"projects": [{"id": 1, "name": "Acme", "timezone": "Europe/Berlin",
                   "test_account_filters": [{"type": "person", "key": "email", "operator": "not_icontains",
                                             "value": "@acme.com"}],
                   "property_definitions": {"age": "Numeric"},
                   "actions": [{"id": 7, "name": "Checkout", "steps": [
                       {"event": "$pageview", "url": "/checkout", "url_matching": "contains"}]}],
                   "cohorts": [{"id": 1, "name": "Pro users", "filters": {"properties": {...}}},
                               {"id": 2, "name": "Beta testers", "is_static": true, "csv": "uploads/beta.csv"}]}]}

Each cohort is a PostHog cohort object with an ``id``; a static cohort may name a ``csv`` file (relative to the
definitions file). The whole file is validated before anything is computed or stored, with PostHog's messages,
prefixed by where the problem is ("project 1, cohort 3 (Pro users): ..."). Cohort ids are unique across the whole
file (the store keeps one id space), and a cohort may only reference cohorts of its own project.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from cohort_pipeline.engine.behaviors.actions import parse_action
from cohort_pipeline.engine.property_types import parse_property_type
from cohort_pipeline.errors import CalculationError, CohortValidationError
from cohort_pipeline.model import CohortDefinition, parse_cohort, parse_filters
from cohort_pipeline.model.references import INVALID_ID_MESSAGE, find_cycle

LOOP = "Cohorts cannot reference other cohorts in a loop."


class DefinitionsFileError(CohortValidationError):
    """A problem in the definitions file. Its message starts with the place (file, project, cohort), so it is
    shown as is (``str`` does not put ``attr`` in front of the place)."""

    def __str__(self) -> str:
        return self.detail


class _ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictInt
    name: str
    timezone: str = "UTC"
    test_account_filters: list[dict[str, Any]] = Field(default_factory=list)
    property_definitions: dict[str, str] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    cohorts: list[dict[str, Any]] = Field(default_factory=list)


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    projects: list[_ProjectSpec]


@dataclass(frozen=True)
class CohortSpec:
    """One cohort of the file: the raw PostHog object (as stored), its parsed definition and its CSV bytes."""

    raw: dict[str, Any]
    definition: CohortDefinition
    csv: bytes | None = None
    csv_name: str | None = None

    @property
    def id(self) -> int:
        return int(self.raw["id"])

    @property
    def name(self) -> str:
        return self.raw.get("name") or "Untitled cohort"


@dataclass(frozen=True)
class ProjectSpec:
    id: int
    name: str
    timezone: str
    test_account_filters: list[dict[str, Any]]
    property_definitions: dict[str, str]
    cohorts: list[CohortSpec] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not cohort 1


def _where(project_id: int, raw: Mapping[str, Any], index: int) -> str:
    name = raw.get("name")
    cohort = f"cohort {raw['id']}" if _is_id(raw.get("id")) else f"cohorts[{index}]"
    return f"project {project_id}, {cohort}" + (f" ({name})" if name else "")


def _load_cohort(project_id: int, index: int, raw: dict[str, Any], base_dir: Path) -> CohortSpec:
    where = _where(project_id, raw, index)
    if not _is_id(raw.get("id")):
        raise DefinitionsFileError(f"{where}: every cohort needs an integer 'id'.", attr="id")
    body = {k: v for k, v in raw.items() if k != "csv"}
    try:
        definition = parse_cohort(body)
    except CohortValidationError as error:
        raise DefinitionsFileError(f"{where}: {error.detail}", attr=error.attr, code=error.code) from error
    if "csv" not in raw:
        return CohortSpec(raw=body, definition=definition)
    if not definition.is_static:
        raise DefinitionsFileError(f"{where}: a CSV can only populate a static cohort (set is_static).",
                                   attr="csv")
    if not isinstance(raw["csv"], str) or not raw["csv"].strip():
        raise DefinitionsFileError(f"{where}: 'csv' must be the path of a CSV file (relative to the definitions "
                                   f"file), got {json.dumps(raw['csv'])}.", attr="csv")
    path = base_dir / raw["csv"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DefinitionsFileError(f"{where}: cannot read CSV file {path}: {error.strerror}", attr="csv") from error
    return CohortSpec(raw=body, definition=definition, csv=data, csv_name=raw["csv"])


def _check_settings(spec: _ProjectSpec) -> None:
    """Timezone, property definitions and the person-type test-account filters (the ones the engine applies)."""
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise DefinitionsFileError(f"project {spec.id}: unknown timezone '{spec.timezone}'.",
                                   attr="timezone") from error
    for key, value in spec.property_definitions.items():
        try:
            parse_property_type(value)
        except CohortValidationError as error:
            raise DefinitionsFileError(f"project {spec.id}: property_definitions.{key}: {error.detail}",
                                       attr="property_definitions") from error
    for index, test_filter in enumerate(spec.test_account_filters):
        if test_filter.get("type", "person") != "person":
            continue
        try:
            parse_filters({"properties": {"type": "AND", "values": [test_filter]}})
        except CohortValidationError as error:
            detail = error.detail.removeprefix("filters.properties.values[0]")
            raise DefinitionsFileError(f"project {spec.id}: test_account_filters[{index}]{detail}",
                                       attr="test_account_filters") from error


def _check_actions(spec: _ProjectSpec) -> None:
    """Every action parses (steps, URL matching, property filters) and ids are unique integers."""
    seen: set[int] = set()
    for index, raw in enumerate(spec.actions):
        where = f"project {spec.id}, actions[{index}]"
        if not _is_id(raw.get("id")):
            raise DefinitionsFileError(f"{where}: every action needs an integer 'id'.", attr="actions")
        if raw["id"] in seen:
            raise DefinitionsFileError(f"{where}: action id {raw['id']} is used twice.", attr="actions")
        seen.add(raw["id"])
        try:
            parse_action(raw, raw["id"])
        except CalculationError as error:
            raise DefinitionsFileError(f"{where}: {error.message}", attr="actions") from error


def _check_project(spec: _ProjectSpec, cohorts: list[CohortSpec]) -> None:
    _check_settings(spec)
    _check_actions(spec)
    seen: set[int] = set()
    for cohort in cohorts:
        if cohort.id in seen:
            raise DefinitionsFileError(f"project {spec.id}: cohort id {cohort.id} is used twice.", attr="id")
        seen.add(cohort.id)
    for index, cohort in enumerate(cohorts):
        missing = sorted(cohort.definition.referenced_cohort_ids() - seen)
        if missing:
            # spec 2.3 (update path): a reference to a cohort the project does not have
            raise DefinitionsFileError(f"{_where(spec.id, cohort.raw, index)}: {INVALID_ID_MESSAGE} "
                                       f"(no cohort {missing[0]} in project {spec.id})", attr="filters")
    cycle = find_cycle({c.id: c.definition for c in cohorts})
    if cycle:
        path = " -> ".join(str(c) for c in cycle)
        raise DefinitionsFileError(f"project {spec.id}: {LOOP} ({path})", attr="filters")


def load_definitions(path: Path) -> list[ProjectSpec]:
    """Read and validate a definitions file; raises CohortValidationError naming the place of the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise DefinitionsFileError(f"cannot read definitions file {path}: {error.strerror}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DefinitionsFileError(f"definitions file {path} is not valid JSON: {error}") from error
    try:
        spec = _FileSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise DefinitionsFileError(f"definitions file {path}: {location}: {first['msg']}") from error
    projects = []
    for project in spec.projects:
        cohorts = [_load_cohort(project.id, index, raw, Path(path).parent)
                   for index, raw in enumerate(project.cohorts)]
        _check_project(project, cohorts)
        projects.append(ProjectSpec(project.id, project.name, project.timezone, project.test_account_filters,
                                    project.property_definitions, cohorts, project.actions))
    ids = [p.id for p in projects]
    if len(ids) != len(set(ids)):
        raise DefinitionsFileError(f"definitions file {path}: a project id is used twice.", attr="projects")
    owner: dict[int, int] = {}
    for project in projects:
        for cohort in project.cohorts:
            if cohort.id in owner:
                raise DefinitionsFileError(
                    f"definitions file {path}: cohort id {cohort.id} is used in project {owner[cohort.id]} and "
                    f"project {project.id} (cohort ids are unique across projects).", attr="id")
            owner[cohort.id] = project.id
    return projects
