"""The PostHog-compatible HTTP API (FastAPI): cohorts, their static members and persons, and a minimal
feature-flag registry, authenticated with personal API keys. Routers are thin; the rules live in ``model/`` and the
use-cases in ``service/``.

``create_app`` is imported lazily, so that ``cohort-pipeline --help`` (which registers ``api.cli``) does not load
FastAPI, Polars and the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cohort_pipeline.api.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cohort_pipeline.api.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
