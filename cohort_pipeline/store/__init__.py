"""The store: every piece of the pipeline's state behind SQLAlchemy (SQLite by default, PostgreSQL by URL).

* ``projects`` and ``cohorts`` (definitions plus the calculation state of spec 1.3),
* ``memberships``: the members of each dynamic cohort's published ``version`` (and nothing else); a publish
  applies who entered and who left in the transaction that flips the version,
* ``static_members``: static cohorts, idempotent on ``(cohort_id, person_id)``,
* ``calculation_history``, hashed ``api_keys`` and a minimal ``feature_flags`` registry.

The schema is owned by the Alembic migrations in ``migrations/``; ``CohortStore.migrate()`` applies them.
"""

from cohort_pipeline.store.api_keys import KEY_PREFIX, hash_key
from cohort_pipeline.store.engine import STORE_URL_ENV, default_store_url
from cohort_pipeline.store.errors import (
    ConflictError,
    InvalidMembershipError,
    NotFoundError,
    StoreError,
    VersionError,
)
from cohort_pipeline.store.members import MEMBERSHIP_SCHEMA
from cohort_pipeline.store.records import (
    ApiKeyRecord,
    CalculationRecord,
    CohortRecord,
    FeatureFlagRecord,
    ProjectRecord,
    PublishResult,
)
from cohort_pipeline.store.store import CohortStore
from cohort_pipeline.store.versions import (
    BACKOFF_BASE,
    ERROR_CODES,
    MAX_AGE,
    MAX_ERRORS_CALCULATING,
    STUCK_AFTER,
)

__all__ = [
    "BACKOFF_BASE",
    "ERROR_CODES",
    "KEY_PREFIX",
    "MAX_AGE",
    "MAX_ERRORS_CALCULATING",
    "MEMBERSHIP_SCHEMA",
    "STORE_URL_ENV",
    "STUCK_AFTER",
    "ApiKeyRecord",
    "CalculationRecord",
    "CohortRecord",
    "CohortStore",
    "ConflictError",
    "FeatureFlagRecord",
    "InvalidMembershipError",
    "NotFoundError",
    "ProjectRecord",
    "PublishResult",
    "StoreError",
    "VersionError",
    "default_store_url",
    "hash_key",
]
