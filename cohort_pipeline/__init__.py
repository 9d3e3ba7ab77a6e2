"""PostHog-compatible cohorts as a Dagster + Polars pipeline.

The two documented entry points for library users:

- :func:`evaluate_cohorts`: PostHog cohort definitions + persons / distinct ids / events -> members;
- :func:`import_static_csv`: a static-cohort CSV upload (PostHog's rules) -> matched person ids and counts.
"""

from cohort_pipeline.engine.evaluate import EvaluationResult, evaluate_cohorts, evaluate_cohorts_detailed
from cohort_pipeline.static import StaticImport, import_static_csv

__all__ = [
    "EvaluationResult",
    "StaticImport",
    "evaluate_cohorts",
    "evaluate_cohorts_detailed",
    "import_static_csv",
]
