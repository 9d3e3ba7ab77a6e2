"""Fixtures for the Dagster tests: the code location (loaded once) and a migrated SQLite store template."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from cohort_pipeline.definitions import defs
from cohort_pipeline_tests.service.helpers import migrated_template


@pytest.fixture(scope="session")
def location() -> dg.Definitions:
    return defs()


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("defs_store_template"))
