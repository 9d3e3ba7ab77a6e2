"""The shared Great Expectations runtime: imported lazily, created once per process, quiet."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl

from cohort_pipeline.quality import validate_membership
from cohort_pipeline.quality.gx_runtime import DATA_SOURCE, gx_loaded, gx_runtime


def test_importing_the_quality_package_does_not_import_great_expectations() -> None:
    code = (
        "import sys, cohort_pipeline.quality\n"
        "assert 'great_expectations' not in sys.modules, 'great_expectations imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_one_quiet_context_is_reused() -> None:
    runtime = gx_runtime()
    assert gx_loaded()
    assert gx_runtime() is runtime
    context = runtime.context
    assert type(context).__name__ == "EphemeralDataContext"
    assert context.config.analytics_enabled is False
    assert "GX_ANALYTICS_ENABLED" in os.environ  # defaulted to "false"; the config above wins either way
    assert context.progress_bars.globally is False
    assert context.progress_bars.metric_calculations is False
    candidate = pl.DataFrame({"cohort_id": [1], "person_id": ["p1"]})
    for _ in range(2):
        validate_membership(candidate, known_person_ids=pl.Series(["p1"]), expected_counts={1: 1}, previous_counts={})
    assert gx_runtime().context is context
    assert {"membership_rows", "cohort_sizes"} <= {a.name for a in context.data_sources.get(DATA_SOURCE).assets}
    assert context.suites.all() == []  # suites are validated in place, never stored: nothing grows per run


def test_pandas_batches_are_not_fingerprinted() -> None:
    """GX's per-batch MD5 of the whole frame is skipped (about 40% of a 1M-row validation)."""
    runtime = gx_runtime()
    frame = pl.DataFrame({"a": [1, 2]}).to_pandas()
    expectation = runtime.expectations.ExpectColumnValuesToNotBeNull(column="a")
    result = runtime.validate("fingerprint_probe", frame, [expectation])
    assert result.success
    assert "pandas_data_fingerprint" not in result.meta["batch_markers"]
