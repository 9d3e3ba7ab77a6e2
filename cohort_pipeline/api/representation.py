"""Records as PostHog's API returns them: field names, timestamps, legacy ``groups`` answered as ``filters``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from cohort_pipeline.model import convert_legacy_groups
from cohort_pipeline.service.cohorts import StaticPopulation
from cohort_pipeline.store import CalculationRecord, CohortRecord, FeatureFlagRecord


def iso(value: datetime | None) -> str | None:
    """DRF's datetime format: ISO-8601 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def basic_user(created_by: str | None) -> dict[str, Any] | None:
    """PostHog nests the creating user; here the creator is an API key's label (or a definitions file)."""
    if not created_by:
        return None
    return {"id": None, "uuid": None, "distinct_id": None, "first_name": created_by, "last_name": "", "email": ""}


def cohort_filters(record: CohortRecord) -> dict[str, Any]:
    """[API] ``to_representation``: the stored ``filters``, or the legacy ``groups`` converted (spec 6.5)."""
    if record.filters:
        return record.filters
    if not record.groups:
        return {"properties": {}}
    return convert_legacy_groups(record.groups, strict=False)


def cohort_json(
    record: CohortRecord,
    *,
    last_error_message: str | None,
    basic: bool = False,
    static_import: StaticPopulation | None = None,
) -> dict[str, Any]:
    """A cohort with every field of spec 1.1 (``basic`` drops ``filters``, ``query`` and ``groups``)."""
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "groups": record.groups,
        "deleted": record.deleted,
        "filters": cohort_filters(record),
        "query": record.query,
        "version": record.version,
        "pending_version": record.pending_version,
        "is_calculating": record.is_calculating,
        "created_by": basic_user(record.created_by),
        "created_at": iso(record.created_at),
        "last_calculation": iso(record.last_calculation),
        "last_backfill_person_properties_at": None,
        "errors_calculating": record.errors_calculating,
        "last_error_message": last_error_message,
        "count": record.count,
        "is_static": record.is_static,
        "cohort_type": record.cohort_type,
        "experiment_set": [],
    }
    if basic:
        for name in ("filters", "query", "groups"):
            body.pop(name)
    if static_import is not None:
        body["static_import"] = static_import.report()
    return body


def calculation_json(run: CalculationRecord) -> dict[str, Any]:
    """PostHog's ``CohortCalculationHistorySerializer`` fields, plus version and entered/exited."""
    duration = run.duration_ms / 1000 if run.duration_ms is not None else None
    return {
        "id": run.id,
        "filters": run.filters,
        "count": run.count,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "queries": [],
        "error": run.error,
        "error_code": run.error_code,
        "duration_seconds": duration,
        "is_completed": run.finished_at is not None,
        "is_successful": run.finished_at is not None and not run.failed,
        "total_query_ms": run.duration_ms,
        "total_memory_mb": None,
        "total_read_rows": None,
        "total_written_rows": None,
        "main_query": None,
        "main_query_id": None,
        "version": run.version,
        "entered": run.entered,
        "exited": run.exited,
    }


def flag_json(flag: FeatureFlagRecord) -> dict[str, Any]:
    return {
        "id": flag.id,
        "key": flag.key,
        "name": flag.name,
        "filters": flag.filters,
        "active": flag.active,
        "deleted": flag.deleted,
        "created_by": basic_user(flag.created_by),
        "created_at": iso(flag.created_at),
        "updated_at": iso(flag.updated_at),
    }


def page_url(request: Request, *, limit: int, offset: int) -> str:
    """The request's absolute URL with ``limit``/``offset`` replaced (DRF's ``next``/``previous``)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
    params += [("limit", str(limit)), ("offset", str(offset))]
    return str(request.url.replace(query=urlencode(params)))


def paginated(request: Request, results: list[Any], *, total: int, limit: int, offset: int) -> dict[str, Any]:
    """DRF's ``LimitOffsetPagination`` page."""
    next_url = page_url(request, limit=limit, offset=offset + limit) if offset + limit < total else None
    previous_url = None
    if offset > 0:
        previous_url = page_url(request, limit=limit, offset=max(0, offset - limit))
    return {"count": total, "next": next_url, "previous": previous_url, "results": results}
