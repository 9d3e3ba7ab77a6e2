"""Where the pipeline reads its inputs and keeps its state; every path can be overridden per run or by env."""

from __future__ import annotations

import os
from pathlib import Path
from threading import Lock

import dagster as dg

from cohort_pipeline.service.definitions_file import ProjectSpec, load_definitions
from cohort_pipeline.service.definitions_snapshot import DefinitionsSnapshot, load_snapshot
from cohort_pipeline.store import CohortStore, MAX_AGE, default_store_url

_STORES: dict[str, CohortStore] = {}
_STORES_LOCK = Lock()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class CohortPipelineSettings(dg.ConfigurableResource):
    """Data folder (one ``project_<id>/`` per project), the cohort definitions file, the store URL, the state
    folder (the last valid definitions snapshot, summaries), and the stale-cohort age of the schedule."""

    data_dir: str = os.environ.get("COHORT_PIPELINE_DATA_DIR", "data/sample")
    definitions_path: str = os.environ.get("COHORT_PIPELINE_DEFINITIONS", "data/sample/cohorts.json")
    store_url: str = ""  # empty: COHORT_PIPELINE_STORE_URL or the default SQLite file
    state_dir: str = os.environ.get("COHORT_PIPELINE_STATE_DIR", ".cohort_pipeline")
    stale_after_minutes: int = _env_int("COHORT_PIPELINE_STALE_AFTER_MINUTES",
                                        int(MAX_AGE.total_seconds() // 60))

    def projects(self) -> list[ProjectSpec]:
        """The definitions file, validated (raises ``DefinitionsFileError`` naming the place of a problem)."""
        return load_definitions(Path(self.definitions_path))

    def snapshot(self) -> DefinitionsSnapshot:
        """The last valid definitions file (written by the ``cohort_definitions`` asset)."""
        return load_snapshot(Path(self.state_dir))

    def store(self) -> CohortStore:
        """The migrated store (one per URL and process: sensors call this on every tick)."""
        url = self.store_url or default_store_url()
        with _STORES_LOCK:
            store = _STORES.get(url)
            if store is None:
                store = CohortStore(url)
                store.migrate()
                _STORES[url] = store
        return store


@dg.definitions
def resources() -> dg.Definitions:
    # Steps run inside the run's own process: they are few and sequential (one fused evaluation does the work), and
    # a subprocess per step would re-import Polars, Dagster and Great Expectations for each of them.
    return dg.Definitions(resources={"settings": CohortPipelineSettings()}, executor=dg.in_process_executor)
