"""OpenAPI shapes of the API: PostHog's field names, for documentation and for response validation.

Request bodies are decoded by :mod:`.body` and validated by ``model/`` (so that JSON and multipart requests get
the same rules and PostHog's messages); the request models here only describe them in the published schema.
Response models are what the routers return, so FastAPI checks every response against the schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """PostHog's error body."""

    type: str = Field(examples=["validation_error"])
    code: str = Field(examples=["invalid_input"])
    detail: str
    attr: str | None = None
    csv: list[str] | None = Field(default=None, description="CSV upload errors repeat the detail here (DRF's shape).")


class BasicUser(BaseModel):
    """Who created a cohort: the label of the API key used (this project has no user accounts)."""

    id: int | None = None
    uuid: str | None = None
    distinct_id: str | None = None
    first_name: str
    last_name: str = ""
    email: str = ""


class StaticImport(BaseModel):
    """How a static population matched persons (spec 7.4); only in the response that added them."""

    source: Literal["csv", "person_ids", "csv+person_ids", "query", "criteria", "empty"]
    id_type: str | None = None
    rows_total: int | None = None
    rows_skipped: int | None = None
    ids_submitted: int | None = None
    persons_matched: int
    persons_added: int | None = None
    unmatched_count: int | None = None
    unmatched_sample: list[str] = Field(default_factory=list)


class Cohort(BaseModel):
    """A cohort as PostHog's API returns it (spec 1.1)."""

    model_config = ConfigDict(extra="allow")

    id: int
    name: str | None
    description: str
    groups: list[Any] | None = None
    deleted: bool
    filters: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    version: int | None
    pending_version: int | None
    is_calculating: bool
    created_by: BasicUser | None
    created_at: str
    last_calculation: str | None
    last_backfill_person_properties_at: str | None = None
    errors_calculating: int
    last_error_message: str | None
    count: int | None
    is_static: bool
    cohort_type: str | None
    experiment_set: list[int] = Field(default_factory=list)
    static_import: StaticImport | None = Field(
        default=None, description="Present after a request that added static members (CSV, person ids, query).")


class CohortList(BaseModel):
    """DRF's limit/offset page."""

    count: int
    next: str | None
    previous: str | None
    results: list[Cohort]


class Person(BaseModel):
    """PostHog's serialized person."""

    id: str
    uuid: str
    type: Literal["person"] = "person"
    name: str
    distinct_ids: list[str]
    properties: dict[str, Any]
    created_at: str | None
    last_seen_at: str | None = None
    is_identified: bool | None = None
    matched_recordings: list[dict[str, Any]] = Field(default_factory=list)
    value_at_data_point: float | None = None


class PersonPage(BaseModel):
    results: list[Person]
    next: str | None
    previous: str | None


class CalculationRun(BaseModel):
    """One calculation of a cohort (PostHog's ``CohortCalculationHistorySerializer`` plus this project's
    version and entered/exited counts)."""

    id: int
    filters: dict[str, Any] | None
    count: int | None
    started_at: str
    finished_at: str | None
    queries: list[Any] = Field(default_factory=list)
    error: str | None
    error_code: str | None
    duration_seconds: float | None
    is_completed: bool
    is_successful: bool
    total_query_ms: int | None = None
    total_memory_mb: float | None = None
    total_read_rows: int | None = None
    total_written_rows: int | None = None
    main_query: str | None = None
    main_query_id: str | None = None
    version: int | None
    entered: int | None
    exited: int | None


class CalculationHistory(BaseModel):
    results: list[CalculationRun]
    count: int
    next: str | None
    previous: str | None


class Success(BaseModel):
    success: bool = True


class FeatureFlag(BaseModel):
    """A flag of the minimal registry: key, name, active, PostHog's ``filters`` (condition groups)."""

    id: int
    key: str
    name: str
    filters: dict[str, Any]
    active: bool
    deleted: bool
    created_by: BasicUser | None
    created_at: str
    updated_at: str


class FeatureFlagList(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[FeatureFlag]


# ------------------------------------------------------------------------------------ request documentation

_FILTER_GROUP = {
    "type": "object",
    "description": "{\"type\": \"AND\"|\"OR\", \"values\": [filters or groups]} (spec 3)",
    "properties": {"type": {"type": "string", "enum": ["AND", "OR"]}, "values": {"type": "array", "items": {}}},
}

COHORT_WRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": ["string", "null"], "maxLength": 400},
        "description": {"type": "string", "maxLength": 1000},
        "is_static": {"type": "boolean"},
        "filters": {
            "type": ["object", "null"],
            "properties": {"properties": _FILTER_GROUP, "filterTestAccounts": {"type": "boolean"}},
        },
        "groups": {"type": "array", "items": {"type": "object"}, "description": "Deprecated legacy groups."},
        "query": {
            "type": ["object", "null"],
            "description": "Static cohorts only: {\"kind\": \"HogQLQuery\", \"query\": \"SELECT ...\"} or an "
                           "ActorsQuery with person-property `properties`.",
            "properties": {"kind": {"type": "string", "enum": ["HogQLQuery", "ActorsQuery"]}},
        },
        "deleted": {"type": "boolean"},
        "cohort_type": {
            "type": ["string", "null"],
            "enum": ["static", "person_property", "behavioral", "realtime", "analytical", None],
        },
        "_create_static_person_ids": {"type": "array", "items": {"type": "string"}},
        "_create_in_folder": {"type": "string"},
    },
}

COHORT_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "is_static": {"type": "string", "enum": ["true", "false"]},
        "filters": {"type": "string", "description": "JSON text of the filters object."},
        "csv": {"type": "string", "format": "binary"},
    },
}


def body_docs(schema: dict[str, Any], *, multipart: bool = False, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a request body decoded by hand (see the module docstring)."""
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if multipart:
        content["multipart/form-data"] = {"schema": COHORT_FORM_SCHEMA}
    return {"requestBody": {"required": required, "content": content}}


ADD_PERSONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["person_ids"],
    "properties": {"person_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 1000}},
}
REMOVE_PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["person_id"],
    "properties": {"person_id": {"type": "string", "format": "uuid"}},
}
FLAG_WRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$", "maxLength": 400},
        "name": {"type": "string", "maxLength": 400},
        "active": {"type": "boolean"},
        "deleted": {"type": "boolean"},
        "filters": {
            "type": "object",
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "properties": {"type": "array", "items": {"type": "object"}},
                            "rollout_percentage": {"type": ["number", "null"]},
                        },
                    },
                }
            },
        },
    },
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Validation error (PostHog's body)"},
    401: {"model": ErrorBody, "description": "No or unknown API key"},
    403: {"model": ErrorBody, "description": "The API key lacks a scope"},
    404: {"model": ErrorBody, "description": "Not found (or another project's)"},
    413: {"model": ErrorBody, "description": "Body over the size limit"},
    415: {"model": ErrorBody, "description": "Unsupported content type"},
}
