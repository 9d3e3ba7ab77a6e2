"""Writing calculation results to files: memberships (Parquet) and a counts table (CSV and Parquet).

Files are written to a temporary name and renamed into place, so a crash never leaves a half-written output
beside a complete one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from cohort_pipeline.service.calculate import ProjectResult

MEMBERSHIPS_FILE = "memberships.parquet"
COUNTS_FILE = "cohort_counts.csv"


def counts_frame(results: Sequence[ProjectResult]) -> pl.DataFrame:
    """One row per cohort: project, id, name, kind, count (null when it failed) and the error."""
    rows = [
        {
            "project_id": result.project.id,
            "cohort_id": outcome.cohort_id,
            "name": outcome.name,
            "is_static": outcome.is_static,
            "count": outcome.count,
            "error": None if outcome.error is None else outcome.error.message,
        }
        for result in results
        for outcome in result.outcomes
    ]
    schema = {"project_id": pl.Int64, "cohort_id": pl.Int64, "name": pl.String, "is_static": pl.Boolean,
              "count": pl.Int64, "error": pl.String}
    return pl.DataFrame(rows, schema=schema)


def counts_markdown(counts: pl.DataFrame) -> str:
    """The counts table as Markdown, for run metadata and reports."""
    header = "| project | cohort | name | kind | count |\n|---:|---:|---|---|---:|"
    rows = [
        f"| {r['project_id']} | {r['cohort_id']} | {r['name']} | {'static' if r['is_static'] else 'dynamic'} | "
        f"{r['count'] if r['error'] is None else 'failed: ' + r['error']} |"
        for r in counts.iter_rows(named=True)
    ]
    return "\n".join([header, *rows])


def memberships_frame(results: Sequence[ProjectResult]) -> pl.DataFrame:
    frames = [r.memberships.select(pl.lit(r.project.id, pl.Int64).alias("project_id"), "cohort_id", "person_id")
              for r in results]
    if not frames:
        return pl.DataFrame(schema={"project_id": pl.Int64, "cohort_id": pl.Int64, "person_id": pl.String})
    return pl.concat(frames)


def _replace(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_results(results: Sequence[ProjectResult], output_dir: Path) -> dict[str, Path]:
    """Write ``memberships.parquet`` and ``cohort_counts.csv`` into ``output_dir``; returns their paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    memberships, counts = output_dir / MEMBERSHIPS_FILE, output_dir / COUNTS_FILE
    _replace(memberships, memberships_frame(results).write_parquet)
    _replace(counts, counts_frame(results).write_csv)
    return {"memberships": memberships, "counts": counts}
