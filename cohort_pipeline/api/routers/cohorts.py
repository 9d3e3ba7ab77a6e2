"""``/api/projects/{project_id}/cohorts/``: PostHog's cohort endpoints (spec 2). Thin: decode, call
:class:`~cohort_pipeline.service.cohorts.CohortService`, represent."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cohort_pipeline.api.auth import MAX_ID, Caller, require
from cohort_pipeline.api.body import read_object, read_payload
from cohort_pipeline.api.errors import method_not_allowed
from cohort_pipeline.api.representation import calculation_json, cohort_json, page_url, paginated
from cohort_pipeline.api.schemas import (
    ADD_PERSONS_SCHEMA,
    COHORT_WRITE_SCHEMA,
    ERROR_RESPONSES,
    REMOVE_PERSON_SCHEMA,
    CalculationHistory,
    Cohort,
    CohortList,
    PersonPage,
    Success,
    body_docs,
)
from cohort_pipeline.service.cohorts import CohortResult, CohortService

router = APIRouter(prefix="/api/projects/{project_id}/cohorts", tags=["cohorts"], responses=ERROR_RESPONSES)

CohortId = Annotated[int, Path(ge=1, le=MAX_ID, description="The cohort's id.")]
Limit = Annotated[int | None, Query(ge=1, le=1_000_000)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
DEFAULT_PAGE: Final = 100
CSV_EXPORT_LIMIT: Final = 300_000
TRUE_TEXT: Final = frozenset({"true", "1", "yes", "on", "t", "y"})

Reader = Annotated[Caller, Depends(require("cohort:read"))]
Writer = Annotated[Caller, Depends(require("cohort:write"))]
PersonReader = Annotated[Caller, Depends(require("cohort:read", "person:read"))]


def service(request: Request) -> CohortService:
    return request.app.state.cohorts  # type: ignore[no-any-return]


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUE_TEXT


async def _represent(request: Request, result: CohortResult) -> dict[str, Any]:
    messages = await run_in_threadpool(service(request).last_error_messages, [result.cohort])
    return cohort_json(result.cohort, last_error_message=messages[result.cohort.id],
                       static_import=result.static_import)


@router.get("/", response_model=CohortList, response_model_exclude_unset=True, summary="List cohorts")
async def list_cohorts(
    request: Request,
    project_id: int,
    caller: Reader,
    limit: Limit = None,
    offset: Offset = 0,
    search: Annotated[str | None, Query(max_length=10_000)] = None,
    type: Annotated[str | None, Query(description="static or dynamic")] = None,  # noqa: A002 - PostHog's name
    basic: str | None = None,
    hide_behavioral_cohorts: str | None = None,
) -> dict[str, Any]:
    """Live cohorts, newest first, paginated (``limit``/``offset``, default 100)."""
    cohorts = service(request)
    records = await run_in_threadpool(cohorts.list, project_id, search=search, cohort_kind=type,
                                      hide_behavioral=_flag(hide_behavioral_cohorts))
    page_size = limit or DEFAULT_PAGE
    page = records[offset:offset + page_size]
    messages = await run_in_threadpool(cohorts.last_error_messages, page)
    results = [cohort_json(r, last_error_message=messages[r.id], basic=_flag(basic)) for r in page]
    return paginated(request, results, total=len(records), limit=page_size, offset=offset)


@router.post("/", status_code=201, response_model=Cohort, response_model_exclude_unset=True, summary="Create a cohort",
             openapi_extra=body_docs(COHORT_WRITE_SCHEMA, multipart=True))
async def create_cohort(request: Request, project_id: int, caller: Writer) -> dict[str, Any]:
    """Dynamic (``filters`` / legacy ``groups``) or static (multipart ``csv``, ``_create_static_person_ids``,
    ``query``, or a snapshot of ``filters``)."""
    payload, upload = await read_payload(request, allow_csv=True, max_file_bytes=request.app.state.max_body_bytes)
    result = await run_in_threadpool(service(request).create, project_id, payload, csv=upload,
                                     created_by=caller.label)
    return await _represent(request, result)


@router.get("/{cohort_id}/", response_model=Cohort, response_model_exclude_unset=True, summary="Retrieve a cohort")
async def retrieve_cohort(request: Request, project_id: int, cohort_id: CohortId, caller: Reader) -> dict[str, Any]:
    record = await run_in_threadpool(service(request).get, project_id, cohort_id)
    return await _represent(request, CohortResult(record))


async def _update(request: Request, project_id: int, cohort_id: int) -> dict[str, Any]:
    payload, upload = await read_payload(request, allow_csv=True, max_file_bytes=request.app.state.max_body_bytes)
    result = await run_in_threadpool(service(request).update, project_id, cohort_id, payload, csv=upload)
    return await _represent(request, result)


@router.patch("/{cohort_id}/", response_model=Cohort, response_model_exclude_unset=True,
              summary="Update a cohort (soft delete with deleted: true)",
              openapi_extra=body_docs(COHORT_WRITE_SCHEMA, multipart=True, required=False))
async def update_cohort(request: Request, project_id: int, cohort_id: CohortId, caller: Writer) -> dict[str, Any]:
    return await _update(request, project_id, cohort_id)


@router.put("/{cohort_id}/", response_model=Cohort, response_model_exclude_unset=True, summary="Update a cohort",
            openapi_extra=body_docs(COHORT_WRITE_SCHEMA, multipart=True, required=False))
async def replace_cohort(request: Request, project_id: int, cohort_id: CohortId, caller: Writer) -> dict[str, Any]:
    return await _update(request, project_id, cohort_id)


@router.delete("/{cohort_id}/", status_code=405, summary="Not allowed: soft delete with PATCH {\"deleted\": true}",
               responses={405: {"description": "Cohorts are only soft-deleted"}})
async def delete_cohort(project_id: int, cohort_id: CohortId, caller: Writer) -> None:
    raise method_not_allowed("DELETE", "GET, PUT, PATCH, HEAD, OPTIONS")


def _persons_csv(people: list[dict[str, Any]]) -> str:
    """PostHog's CSV export: ``id, email, name, created_at``, then every property and distinct id flattened
    (``properties.<key>``, ``distinct_ids.<n>``); the email property moves to its own column."""
    rows: list[dict[str, Any]] = []
    property_keys: list[str] = []
    max_ids = 0
    for person in people:
        properties = dict(person["properties"])
        email = properties.pop("email", None)
        row: dict[str, Any] = {"id": person["id"], "email": email or "", "name": person["name"],
                               "created_at": person["created_at"] or ""}
        for key, value in properties.items():
            column = f"properties.{key}"
            if column not in property_keys:
                property_keys.append(column)
            row[column] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
        for index, distinct_id in enumerate(person["distinct_ids"]):
            row[f"distinct_ids.{index}"] = distinct_id
        max_ids = max(max_ids, len(person["distinct_ids"]))
        rows.append(row)
    header = ["id", "email", "name", "created_at", *sorted(property_keys),
              *(f"distinct_ids.{i}" for i in range(max_ids))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@router.get("/{cohort_id}/persons/", response_model=PersonPage, summary="The cohort's persons",
            responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with format=csv"}})
async def cohort_persons(
    request: Request,
    project_id: int,
    cohort_id: CohortId,
    caller: PersonReader,
    limit: Limit = None,
    offset: Offset = 0,
    format: Annotated[str | None, Query(description="csv for a CSV export")] = None,  # noqa: A002
    is_csv_export: str | None = None,
) -> Any:
    """Members (newest persons first), ``limit`` 100 by default; CSV with ``?format=csv`` or ``Accept: text/csv``
    (default limit 300,000)."""
    as_csv = format == "csv" or _flag(is_csv_export) or "text/csv" in request.headers.get("accept", "")
    page_size = limit or (CSV_EXPORT_LIMIT if as_csv else DEFAULT_PAGE)
    people = await run_in_threadpool(service(request).persons, project_id, cohort_id, limit=page_size,
                                     offset=offset)
    if as_csv:
        return Response(_persons_csv(people), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="cohort-{cohort_id}-persons.csv"'})
    next_url = page_url(request, limit=page_size, offset=offset + page_size) if len(people) >= page_size else None
    previous_url = page_url(request, limit=page_size, offset=offset - page_size) if offset - page_size >= 0 else None
    return {"results": people, "next": next_url, "previous": previous_url}


@router.patch("/{cohort_id}/add_persons_to_static_cohort/", response_model=Success,
              summary="Add persons (by person UUID) to a static cohort", openapi_extra=body_docs(ADD_PERSONS_SCHEMA))
async def add_persons(request: Request, project_id: int, cohort_id: CohortId, caller: Writer) -> dict[str, Any]:
    body = await read_object(request)
    await run_in_threadpool(service(request).add_persons, project_id, cohort_id, body)
    return {"success": True}


@router.patch("/{cohort_id}/remove_person_from_static_cohort/", response_model=Success,
              summary="Remove a person from a static cohort", openapi_extra=body_docs(REMOVE_PERSON_SCHEMA))
async def remove_person(request: Request, project_id: int, cohort_id: CohortId, caller: Writer) -> dict[str, Any]:
    body = await read_object(request)
    await run_in_threadpool(service(request).remove_person, project_id, cohort_id, body)
    return {"success": True}


@router.get("/{cohort_id}/calculation_history/", response_model=CalculationHistory,
            summary="The cohort's calculation runs, newest first")
async def calculation_history(
    request: Request,
    project_id: int,
    cohort_id: CohortId,
    caller: Reader,
    limit: Limit = None,
    offset: Offset = 0,
) -> dict[str, Any]:
    runs = await run_in_threadpool(service(request).calculation_history, project_id, cohort_id)
    page_size = limit or DEFAULT_PAGE
    page = runs[offset:offset + page_size]
    return {
        "results": [calculation_json(run) for run in page],
        "count": len(runs),
        "next": None if offset + page_size >= len(runs) else f"?limit={page_size}&offset={offset + page_size}",
        "previous": None if offset == 0 else f"?limit={page_size}&offset={max(0, offset - page_size)}",
    }


__all__ = ["router"]
