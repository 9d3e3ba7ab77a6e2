"""Fixtures for the service tests: the sample definitions and data (loaded once) and a fresh SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cohort_pipeline.service.definitions_file import ProjectSpec, load_definitions
from cohort_pipeline.sources import ProjectData, load_project
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import SAMPLE, SAMPLE_DEFINITIONS, migrated_template, store_copy


@pytest.fixture(scope="session")
def sample_projects() -> dict[int, ProjectSpec]:
    return {project.id: project for project in load_definitions(SAMPLE_DEFINITIONS)}


@pytest.fixture(scope="session")
def sample_data() -> dict[int, ProjectData]:
    return {project_id: load_project(SAMPLE, project_id) for project_id in (1, 2)}


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("service_store_template"))


@pytest.fixture
def store(store_template: Path, tmp_path: Path) -> Iterator[CohortStore]:
    store, _ = store_copy(store_template, tmp_path)
    yield store
    store.close()
