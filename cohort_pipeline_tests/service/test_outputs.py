"""Result files: memberships (Parquet) and counts (CSV), replaced whole; the Markdown counts table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cohort_pipeline.service.calculate import calculate_project
from cohort_pipeline.service.definitions_file import load_definitions
from cohort_pipeline.service.outputs import counts_frame, counts_markdown, memberships_frame, write_results
from cohort_pipeline.sources import EVENTS_SCHEMA, PERSON_DISTINCT_IDS_SCHEMA, PERSONS_SCHEMA, ProjectData
from cohort_pipeline_tests.service.helpers import dynamic, person_leaf, write_json

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def results(tmp_path: Path, plans: dict[str, str]):
    (tmp_path / "empty.csv").write_bytes(b"")
    [project] = load_definitions(write_json(tmp_path / "c.json", {"projects": [{"id": 7, "name": "P", "cohorts": [
        dynamic(1, "Pro", person_leaf("plan", "exact", "pro")),
        {"id": 2, "name": "Empty upload", "is_static": True, "csv": "empty.csv"},
    ]}]}))
    persons = pl.DataFrame({"id": list(plans), "created_at": [NOW] * len(plans),
                            "properties": [json.dumps({"plan": p}) for p in plans.values()]}, schema=PERSONS_SCHEMA)
    data = ProjectData(persons.lazy(), pl.LazyFrame(schema=PERSON_DISTINCT_IDS_SCHEMA),
                       pl.LazyFrame(schema=EVENTS_SCHEMA))
    return [calculate_project(project, data, now=NOW)]


def test_write_results_replaces_both_files_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_results(results(tmp_path, {"a": "pro", "b": "pro"}), out)
    paths = write_results(results(tmp_path, {"a": "pro", "b": "free"}), out)

    assert sorted(p.name for p in out.iterdir()) == ["cohort_counts.csv", "memberships.parquet"]  # no temp files
    assert pl.read_parquet(paths["memberships"]).rows() == [(7, 1, "a")]
    assert pl.read_csv(paths["counts"]).rows() == [
        (7, 1, "Pro", False, 1, None),
        (7, 2, "Empty upload", True, None,
         "csv: CSV file is empty. Please upload a CSV file with at least one row of data."),
    ]


def test_counts_markdown_and_empty_frames(tmp_path: Path) -> None:
    markdown = counts_markdown(counts_frame(results(tmp_path, {"a": "pro"})))
    assert markdown.splitlines() == [
        "| project | cohort | name | kind | count |",
        "|---:|---:|---|---|---:|",
        "| 7 | 1 | Pro | dynamic | 1 |",
        "| 7 | 2 | Empty upload | static | failed: csv: CSV file is empty. Please upload a CSV file with at least "
        "one row of data. |",
    ]
    assert memberships_frame([]).schema == pl.Schema(
        {"project_id": pl.Int64, "cohort_id": pl.Int64, "person_id": pl.String})
    assert counts_frame([]).height == 0
