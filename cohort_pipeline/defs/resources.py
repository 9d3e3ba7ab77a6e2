"""Where the pipeline reads its inputs and keeps its state; every path can be overridden per run or by env."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from cohort_pipeline.service.definitions_file import ProjectSpec, load_definitions
from cohort_pipeline.sources import ProjectData, load_project
from cohort_pipeline.store import CohortStore, default_store_url


class CohortPipelineSettings(dg.ConfigurableResource):
    """Data folder (one ``project_<id>/`` per project), the cohort definitions file and the store URL."""

    data_dir: str = os.environ.get("COHORT_PIPELINE_DATA_DIR", "data/sample")
    definitions_path: str = os.environ.get("COHORT_PIPELINE_DEFINITIONS", "data/sample/cohorts.json")
    store_url: str = ""  # empty: COHORT_PIPELINE_STORE_URL or the default SQLite file

    def projects(self) -> list[ProjectSpec]:
        return load_definitions(Path(self.definitions_path))

    def project_data(self, project_id: int) -> ProjectData:
        return load_project(Path(self.data_dir), project_id)

    def store(self) -> CohortStore:
        store = CohortStore(self.store_url or default_store_url())
        store.migrate()
        return store


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"settings": CohortPipelineSettings()})
