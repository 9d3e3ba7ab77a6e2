"""``/api/projects/{project_id}/feature_flags/``: the minimal flag registry the cohort rules need (spec 8.2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from cohort_pipeline.api.auth import MAX_ID, Caller, require
from cohort_pipeline.api.body import read_object
from cohort_pipeline.api.errors import method_not_allowed
from cohort_pipeline.api.representation import flag_json, paginated
from cohort_pipeline.api.schemas import ERROR_RESPONSES, FLAG_WRITE_SCHEMA, FeatureFlag, FeatureFlagList, body_docs
from cohort_pipeline.service.feature_flags import FeatureFlagService

router = APIRouter(prefix="/api/projects/{project_id}/feature_flags", tags=["feature flags"],
                   responses=ERROR_RESPONSES)

FlagId = Annotated[int, Path(ge=1, le=MAX_ID, description="The flag's id.")]
Reader = Annotated[Caller, Depends(require("feature_flag:read"))]
Writer = Annotated[Caller, Depends(require("feature_flag:write"))]


def service(request: Request) -> FeatureFlagService:
    return request.app.state.flags  # type: ignore[no-any-return]


@router.get("/", response_model=FeatureFlagList, summary="List feature flags")
async def list_flags(
    request: Request,
    project_id: int,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    flags = await run_in_threadpool(service(request).list, project_id)
    results = [flag_json(flag) for flag in flags[offset:offset + limit]]
    return paginated(request, results, total=len(flags), limit=limit, offset=offset)


@router.post("/", status_code=201, response_model=FeatureFlag, summary="Create a feature flag",
             openapi_extra=body_docs({**FLAG_WRITE_SCHEMA, "required": ["key"]}))
async def create_flag(request: Request, project_id: int, caller: Writer) -> dict[str, Any]:
    """``key`` (letters, digits, ``-``, ``_``), ``name``, ``active`` (default true) and PostHog's ``filters``; the
    cohorts it targets must exist and have no behavioral filters."""
    body = await read_object(request)
    flag = await run_in_threadpool(service(request).create, project_id, body, created_by=caller.label)
    return flag_json(flag)


@router.get("/{flag_id}/", response_model=FeatureFlag, summary="Retrieve a feature flag")
async def retrieve_flag(request: Request, project_id: int, flag_id: FlagId, caller: Reader) -> dict[str, Any]:
    return flag_json(await run_in_threadpool(service(request).get, project_id, flag_id))


async def _update(request: Request, project_id: int, flag_id: int) -> dict[str, Any]:
    body = await read_object(request)
    return flag_json(await run_in_threadpool(service(request).update, project_id, flag_id, body))


@router.patch("/{flag_id}/", response_model=FeatureFlag, summary="Update a feature flag (deleted: true deletes)",
              openapi_extra=body_docs(FLAG_WRITE_SCHEMA, required=False))
async def update_flag(request: Request, project_id: int, flag_id: FlagId, caller: Writer) -> dict[str, Any]:
    return await _update(request, project_id, flag_id)


@router.put("/{flag_id}/", response_model=FeatureFlag, summary="Update a feature flag",
            openapi_extra=body_docs(FLAG_WRITE_SCHEMA, required=False))
async def replace_flag(request: Request, project_id: int, flag_id: FlagId, caller: Writer) -> dict[str, Any]:
    return await _update(request, project_id, flag_id)


@router.delete("/{flag_id}/", status_code=405, summary="Not allowed: soft delete with PATCH {\"deleted\": true}",
               responses={405: {"description": "Flags are only soft-deleted"}})
async def delete_flag(project_id: int, flag_id: FlagId, caller: Writer) -> None:
    raise method_not_allowed("DELETE", "GET, PUT, PATCH, HEAD, OPTIONS")


__all__ = ["router"]
