"""Data-quality checks with Great Expectations 1.x, shared by Dagster asset checks and the CLI path.

One call validates a run's candidate membership and says which cohorts may be published::

    validation = validate_membership(
        candidate,                          # (cohort_id, person_id) rows of every cohort of the run
        known_person_ids=persons,           # the project's persons (Series, or frame with `id`)
        expected_counts={7: 1200, 8: 0},    # the counts about to be published (None: skip that check)
        previous_counts={7: 1100, 8: None}, # published counts; None = first calculation
        realtime_cohort_ids={7},
    )
    validation.success                      # no ERROR check failed
    validation.failed_cohort_ids            # do not publish these ...
    validation.publishable_cohort_ids       # ... publish these
    validation.failure_message(7)           # the reason, for the run log and calculation history
    validation.to_metadata()                # Dagster metadata (strings and numbers)

Importing this package does not import Great Expectations (about 2 s); the first validation in a process does,
once (:mod:`.gx_runtime`), unless ``warm_up()`` started that import in the background beforehand.
"""

from cohort_pipeline.quality.gx_runtime import warm_up
from cohort_pipeline.quality.membership import (
    CHECKS,
    DEFAULT_SIZE_CHANGE_THRESHOLD,
    KnownPersons,
    validate_membership,
)
from cohort_pipeline.quality.results import CheckResult, MembershipValidation, Severity

__all__ = [
    "CHECKS",
    "DEFAULT_SIZE_CHANGE_THRESHOLD",
    "CheckResult",
    "KnownPersons",
    "MembershipValidation",
    "Severity",
    "validate_membership",
    "warm_up",
]
