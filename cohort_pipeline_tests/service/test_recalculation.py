"""The recalculation use-case's preparation of the quality checks: Great Expectations is imported in the
background while the engine runs, and only when something is computed. (Everything else about ``recalculate`` is
exercised through the Dagster assets and the API.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cohort_pipeline.service import recalculation
from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline.service.definitions_snapshot import load_snapshot, sync_definitions
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import SAMPLE, SAMPLE_DEFINITIONS

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def warm_ups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(recalculation, "warm_up_quality_checks", lambda: calls.append(1))
    return calls


def test_the_quality_checks_are_prepared_before_the_engine_runs(
    store: CohortStore, tmp_path: Path, warm_ups: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_definitions(store, SAMPLE_DEFINITIONS, tmp_path / "state")
    real_calculate = recalculation.calculate_project
    seen_at_calculation: list[int] = []

    def calculate(*args: object, **kwargs: object) -> object:
        seen_at_calculation.append(len(warm_ups))
        return real_calculate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(recalculation, "calculate_project", calculate)
    keys = [CohortKey(1, 1), CohortKey(1, 2)]
    report = recalculation.recalculate(store, keys, data_dir=SAMPLE, snapshot=load_snapshot(tmp_path / "state"),
                                       as_of=NOW)
    assert [o.status for o in report.outcomes] == ["published", "published"]
    assert seen_at_calculation == [1]


def test_nothing_to_compute_prepares_nothing(store: CohortStore, tmp_path: Path, warm_ups: list[int]) -> None:
    sync_definitions(store, SAMPLE_DEFINITIONS, tmp_path / "state")
    report = recalculation.recalculate(store, [CohortKey(1, 999), CohortKey(77, 1)], data_dir=SAMPLE,
                                       snapshot=load_snapshot(tmp_path / "state"), as_of=NOW)
    assert [o.status for o in report.outcomes] == ["skipped", "skipped"]
    assert warm_ups == []
