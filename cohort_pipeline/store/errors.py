"""Errors raised by the store.

They subclass the project's ``CohortPipelineError`` so the API, the CLI and Dagster can present them like every
other deliberate error, and the builtin they resemble (``KeyError``, ``ValueError``) so plain Python callers can
catch them without importing this module.
"""

from __future__ import annotations

from cohort_pipeline.errors import CohortPipelineError


class StoreError(CohortPipelineError):
    """Base class of the store's own errors."""


class NotFoundError(StoreError, KeyError):
    """A project, cohort or API key does not exist (or is not visible from the given project).

    The API maps this to PostHog's 404; a cohort of another project is reported exactly like an unknown id so
    that ids of other projects cannot be probed.
    """

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} not found")
        self.kind = kind
        self.key = key

    def __str__(self) -> str:  # KeyError would quote the message
        return f"{self.kind} {self.key} not found"


class ConflictError(StoreError):
    """A row with the same identity already exists (e.g. an explicit project id that is taken)."""


class InvalidMembershipError(StoreError, ValueError):
    """A membership write was given person ids that cannot be stored (null, not a string)."""


class VersionError(StoreError, ValueError):
    """A publish named a version that was never requested with ``request_calculation``.

    Publishing such a version would push ``version`` past ``pending_version`` and make every later, legitimately
    requested run look obsolete, so it is refused instead.
    """
