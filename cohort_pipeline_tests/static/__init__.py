"""Tests of cohort_pipeline.static (static cohorts from CSV uploads and person-id lists)."""
