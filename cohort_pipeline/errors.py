"""The project's error types.

Every layer (API, CLI, Dagster) turns these into its own presentation, so the message a user sees for a bad
definition is the same everywhere. Messages follow PostHog's wording where the spec quotes it.
"""

from __future__ import annotations

from typing import Any


class CohortPipelineError(Exception):
    """Base class of every error this project raises on purpose."""


class CohortValidationError(CohortPipelineError):
    """A definition, request or upload is invalid (PostHog answers these with HTTP 400).

    ``detail`` is the human message, ``attr`` the offending field (``None`` for object-level rules) and ``code``
    PostHog's machine code (``invalid_input`` unless a rule names another, e.g. ``behavioral_cohort_found``).
    """

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "invalid_input") -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
        self.code = code

    def to_dict(self) -> dict[str, Any]:
        """PostHog's error body: ``{"type", "code", "detail", "attr"}``."""
        return {"type": "validation_error", "code": self.code, "detail": self.detail, "attr": self.attr}

    def __str__(self) -> str:
        return f"{self.attr}: {self.detail}" if self.attr else self.detail


class CSVImportError(CohortValidationError):
    """A static-cohort CSV upload was rejected (PostHog: 400 ``{"csv": [message]}``)."""

    def __init__(self, detail: str, *, code: str = "parse_error") -> None:
        super().__init__(detail, attr="csv", code=code)


class CalculationError(CohortPipelineError):
    """A cohort could not be calculated. ``error_code`` is one of PostHog's codes (spec 9.5)."""

    def __init__(self, message: str, *, error_code: str = "unknown", cohort_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.cohort_id = cohort_id

    def __str__(self) -> str:
        prefix = f"cohort {self.cohort_id}: " if self.cohort_id is not None else ""
        return f"{prefix}{self.message}"


class DataSourceError(CohortPipelineError):
    """A person / distinct-id / event file is missing or malformed; the message names the file and problem."""
