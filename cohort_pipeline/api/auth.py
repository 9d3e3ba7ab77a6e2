"""Personal API keys: ``Authorization: Bearer <key>``, scoped to one project, with PostHog's scopes (spec 2.5).

* no key (or another scheme) -> 401 ``not_authenticated``; an unknown or revoked key -> 401
  ``authentication_failed``; the key is looked up by its SHA-256 and compared in constant time (store).
* a key belongs to one project: any other project's URL answers 404, exactly like a project or cohort that does
  not exist, so ids of other projects cannot be probed.
* a missing scope -> 403 "API key missing required scope '<scope>'". ``*`` grants every scope and, as in PostHog,
  ``<object>:write`` includes ``<object>:read``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cohort_pipeline.api.errors import invalid_key, missing_scope, not_authenticated, not_found
from cohort_pipeline.store import ApiKeyRecord, CohortStore

SCOPES: Final[tuple[str, ...]] = (
    "cohort:read",
    "cohort:write",
    "person:read",
    "feature_flag:read",
    "feature_flag:write",
    "*",
)
"""Scopes this API checks (``keys create --scopes`` accepts these)."""

MAX_ID: Final = 2**63 - 1
bearer = HTTPBearer(auto_error=False, description="A personal API key (`cohort-pipeline keys create`).")

ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The project's id.")]


@dataclass(frozen=True)
class Caller:
    """The authenticated API key and the project it is scoped to."""

    key: ApiKeyRecord

    @property
    def project_id(self) -> int:
        return self.key.project_id

    @property
    def label(self) -> str:
        """How cohorts created with this key record their creator (``created_by`` holds at most 255 characters;
        a key's label may be longer)."""
        return (self.key.label or f"API key {self.key.id}")[:255]


def has_scope(granted: tuple[str, ...], required: str) -> bool:
    """``*``, the scope itself, or the write scope of a read scope."""
    if "*" in granted or required in granted:
        return True
    return required.endswith(":read") and required.removesuffix(":read") + ":write" in granted


def store_of(request: Request) -> CohortStore:
    return request.app.state.store  # type: ignore[no-any-return]


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller's key, or 401."""
    if credentials is None or not credentials.credentials:
        raise not_authenticated()
    key = store_of(request).verify_api_key(credentials.credentials)
    if key is None:
        raise invalid_key()
    return Caller(key)


def require(*scopes: str):  # noqa: ANN201 - a FastAPI dependency factory
    """A dependency: the caller, authenticated, scoped to the URL's project, holding every scope in order."""

    def dependency(project_id: ProjectId, caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if caller.project_id != project_id:
            raise not_found()
        for scope in scopes:
            if not has_scope(caller.key.scopes, scope):
                raise missing_scope(scope)
        return caller

    return dependency


__all__ = ["SCOPES", "Caller", "ProjectId", "authenticate", "has_scope", "require"]
