"""The FastAPI application: PostHog's cohort API over the store, the project data and the service layer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from cohort_pipeline.api.body import DEFAULT_MAX_BODY_BYTES, RequestLimits
from cohort_pipeline.api.errors import install_error_handlers
from cohort_pipeline.api.routers import cohorts, feature_flags
from cohort_pipeline.service.cohorts import CohortService
from cohort_pipeline.service.feature_flags import FeatureFlagService
from cohort_pipeline.service.hogql import DEFAULT_LIMITS, QueryLimits
from cohort_pipeline.store import CohortStore

DESCRIPTION = """PostHog-compatible cohorts (`/api/projects/{project_id}/cohorts/`) and a minimal feature-flag
registry. Authenticate with a personal API key: `Authorization: Bearer <key>` (`cohort-pipeline keys create`).
Errors use PostHog's body `{"type", "code", "detail", "attr"}`. Request bodies are limited to {limit} bytes."""


def create_app(
    store: CohortStore,
    data_dir: Path,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    query_limits: QueryLimits = DEFAULT_LIMITS,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The API over ``store`` (already migrated) and the project data under ``data_dir``.

    ``max_body_bytes`` bounds every request body (uploads included), ``query_limits`` the static-cohort queries,
    and ``clock`` fixes "now" for criteria snapshots and ``now()`` in queries (tests).
    """
    app = FastAPI(
        title="cohort_pipeline API",
        version="1",
        description=DESCRIPTION.replace("{limit}", str(max_body_bytes)),
        openapi_url="/api/schema/",
        docs_url="/api/docs/",
        redoc_url=None,
    )
    app.state.store = store
    app.state.max_body_bytes = max_body_bytes
    app.state.cohorts = CohortService(store, Path(data_dir), clock=clock, query_limits=query_limits)
    app.state.flags = FeatureFlagService(store)
    install_error_handlers(app)
    app.include_router(cohorts.router)
    app.include_router(feature_flags.router)
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes)
    return app
