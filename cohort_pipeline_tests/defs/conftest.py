"""Fixtures for the Dagster tests: the code location (loaded once), a migrated SQLite store template, and a
``Pipeline``: a store, a state folder, a data folder and an ephemeral Dagster instance wired together."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from cohort_pipeline.definitions import defs
from cohort_pipeline.defs.partitions import COHORTS
from cohort_pipeline.defs.resources import CohortPipelineSettings
from cohort_pipeline.service.calculate import calculate_project
from cohort_pipeline.service.cohort_keys import cohort_key
from cohort_pipeline.service.definitions_file import load_definitions
from cohort_pipeline.service.definitions_snapshot import sync_definitions
from cohort_pipeline.sources import load_project
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import NOW_TEXT, SAMPLE, SAMPLE_DEFINITIONS, migrated_template

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="session")
def location() -> dg.Definitions:
    return defs()


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("defs_store_template"))


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """step -> the message Dagster shows for its failure: a ``Failure``'s description, else the exception raised
    in the asset (which Dagster reports as the cause of its "Error occurred while executing op")."""
    found = {}
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None:
                found[event.step_key] = data.user_failure_data.description
            else:
                found[event.step_key] = (data.error.cause or data.error).message.strip()
    return found


def membership_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """partition -> metadata of its ``cohort_membership`` materialization in this run."""
    found = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            if materialization.asset_key == dg.AssetKey("cohort_membership"):
                found[materialization.partition] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """(partition, check name) -> the evaluation of that membership check in this run."""
    return {(e.event_specific_data.partition, e.event_specific_data.check_name): e.event_specific_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.event_specific_data.asset_key == dg.AssetKey("cohort_membership")}


def expected_counts(definitions: Path = SAMPLE_DEFINITIONS, data_dir: Path = SAMPLE,
                    now: datetime = NOW) -> dict[int, int | None]:
    """Counts by the service layer directly, as of ``now``."""
    counts = {}
    for project in load_definitions(definitions):
        result = calculate_project(project, load_project(data_dir, project.id), now=now)
        counts.update({o.cohort_id: o.count for o in result.outcomes})
    return counts


@dataclass
class Pipeline:
    """Settings, store and Dagster instance of one test."""

    location: dg.Definitions
    settings: CohortPipelineSettings
    store: CohortStore
    instance: dg.DagsterInstance

    def reconfigure(self, **changes: object) -> None:
        """New settings (a resource is configured once: build a new one rather than copying with changes)."""
        self.settings = CohortPipelineSettings(**{**self.settings.model_dump(), **changes})

    def sync(self) -> None:
        """Sync the definitions file into the store and register a partition per cohort (what the sensor does)."""
        sync_definitions(self.store, Path(self.settings.definitions_path), Path(self.settings.state_dir))
        self.register()

    def register(self) -> None:
        keys = [cohort_key(p.id, c.id) for p in self.store.list_projects() for c in self.store.list_cohorts(p.id)]
        self.instance.add_dynamic_partitions(
            COHORTS, [k for k in keys if not self.instance.has_dynamic_partition(COHORTS, k)])

    @property
    def partitions(self) -> list[str]:
        return list(self.instance.get_dynamic_partitions(COHORTS))

    def run(self, keys: Sequence[str] | None = None, *, job: str = "recalculate_cohorts", as_of: str | None = NOW_TEXT,
            versions: dict[str, int] | None = None) -> dg.ExecuteInProcessResult:
        """Execute ``job`` over ``keys`` (a contiguous range of partitions; default all) in-process."""
        ordered = self.partitions
        keys = list(keys) if keys is not None else ordered
        start, end = ordered.index(keys[0]), ordered.index(keys[-1])
        assert ordered[start:end + 1] == keys, f"{keys} is not a contiguous range of {ordered}"
        tags = ({"dagster/partition": keys[0]} if len(keys) == 1 else
                {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]})
        config: dict[str, object] = {"as_of": as_of}
        if versions:
            config["versions"] = versions
        run_config = {"resources": {"settings": {"config": self.settings.model_dump()}},
                      "ops": {"cohort_membership": {"config": config}}}
        return self.location.resolve_job_def(job).execute_in_process(
            run_config=run_config, instance=self.instance, tags=tags, raise_on_error=False)


def make_pipeline(location: dg.Definitions, store_template: Path, directory: Path, *,
                  definitions: Path = SAMPLE_DEFINITIONS, data_dir: Path = SAMPLE,
                  persistent: bool = False) -> Pipeline:
    """A pipeline over a copy of ``store_template``; ``persistent`` gives it an on-disk Dagster instance (schedule
    contexts need one)."""
    path = directory / "store.db"
    shutil.copyfile(store_template, path)
    settings = CohortPipelineSettings(data_dir=str(data_dir), definitions_path=str(definitions),
                                      store_url=f"sqlite:///{path}", state_dir=str(directory / "state"))
    if persistent:
        (directory / "dagster_home").mkdir()
        instance = dg.DagsterInstance.local_temp(str(directory / "dagster_home"))
    else:
        instance = dg.DagsterInstance.ephemeral()
    return Pipeline(location, settings, settings.store(), instance)


@pytest.fixture
def pipeline(location: dg.Definitions, store_template: Path, tmp_path: Path) -> Iterator[Pipeline]:
    """A fresh store (nothing synced yet) over the sample data."""
    yield make_pipeline(location, store_template, tmp_path)


@pytest.fixture(scope="session")
def published_template(location: dg.Definitions, store_template: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a store and state where every sample cohort is published once, as of NOW."""
    directory = tmp_path_factory.mktemp("published_template")
    pipeline = make_pipeline(location, store_template, directory)
    pipeline.sync()
    result = pipeline.run()
    assert result.success, failures(result)
    with pipeline.store.engine.connect() as conn:  # the copies read the database file alone
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return directory


def published_copy(location: dg.Definitions, published_template: Path, directory: Path, **options: object
                   ) -> Pipeline:
    """Every sample cohort published once (version 1) in a copy of the template, partitions registered."""
    shutil.copytree(published_template / "state", directory / "state")
    pipeline = make_pipeline(location, published_template / "store.db", directory, **options)  # type: ignore[arg-type]
    pipeline.register()
    return pipeline


@pytest.fixture
def published(location: dg.Definitions, published_template: Path, tmp_path: Path) -> Pipeline:
    return published_copy(location, published_template, tmp_path)


def copy_sample_data(directory: Path) -> Path:
    target = directory / "data"
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns("uploads", "cohorts.json", "*.md"))
    return target
