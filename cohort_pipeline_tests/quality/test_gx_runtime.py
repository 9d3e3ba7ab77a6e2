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


def _fresh_process(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter (this test session has imported GX already)."""
    return subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)


def test_warm_up_builds_the_runtime_in_the_background_once() -> None:
    _fresh_process(
        "import sys, threading\n"
        "from cohort_pipeline.quality import gx_runtime as runtime\n"
        "runtime.warm_up()\n"
        "thread = runtime._WARM_UP\n"
        "assert thread is not None and thread.daemon\n"
        "runtime.warm_up()\n"
        "assert runtime._WARM_UP is thread, 'a second warm-up started another thread'\n"
        "built = runtime.gx_runtime()  # waits for the thread's import, then reuses its runtime\n"
        "thread.join(60)\n"
        "assert not thread.is_alive() and runtime.gx_runtime() is built\n"
        "assert 'great_expectations' in sys.modules\n"
    )


def test_a_failed_warm_up_is_raised_by_the_validation_that_needs_the_runtime() -> None:
    result = _fresh_process(
        "import polars as pl\n"
        "from cohort_pipeline.quality import gx_runtime as runtime, validate_membership\n"
        "def broken():\n"
        "    raise ImportError('no great_expectations here')\n"
        "runtime._create_runtime = broken\n"
        "runtime.warm_up()\n"
        "runtime._WARM_UP.join(60)\n"
        "assert not runtime.gx_loaded()\n"
        "try:\n"
        "    validate_membership(pl.DataFrame({'cohort_id': [1], 'person_id': ['p']}),\n"
        "                        known_person_ids=pl.Series(['p']), expected_counts=None, previous_counts={})\n"
        "except ImportError as error:\n"
        "    assert 'no great_expectations here' in str(error)\n"
        "else:\n"
        "    raise AssertionError('the validation ran without a runtime')\n"
    )
    assert "preparing Great Expectations in the background failed" in result.stderr
