"""PostHog-compatible cohorts as a Dagster + Polars pipeline."""
