"""Summaries of the store for people and dashboards: every cohort's published count, and the recent calculations.

Both are read from the store in one pass and written as CSV files (atomically, as :mod:`.outputs` does), so the
``cohort_counts`` and ``cohort_calculation_history`` assets always describe what readers currently see.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from cohort_pipeline.service.cohort_keys import cohort_key
from cohort_pipeline.store import CohortStore

COUNTS_SCHEMA = {
    "project_id": pl.Int64, "cohort_id": pl.Int64, "partition": pl.String, "name": pl.String, "kind": pl.String,
    "count": pl.Int64, "version": pl.Int64, "pending_version": pl.Int64, "is_calculating": pl.Boolean,
    "errors_calculating": pl.Int64, "last_calculation": pl.Datetime("us", "UTC"),
}
HISTORY_SCHEMA = {
    "project_id": pl.Int64, "cohort_id": pl.Int64, "partition": pl.String, "version": pl.Int64,
    "started_at": pl.Datetime("us", "UTC"), "finished_at": pl.Datetime("us", "UTC"), "count": pl.Int64,
    "entered": pl.Int64, "exited": pl.Int64, "error": pl.String, "error_code": pl.String, "duration_ms": pl.Int64,
}


def cohort_counts(store: CohortStore) -> pl.DataFrame:
    """Every live cohort of every project with its published state, by project and cohort id."""
    rows = [
        {"project_id": c.project_id, "cohort_id": c.id, "partition": cohort_key(c.project_id, c.id),
         "name": c.name or "Untitled cohort", "kind": "static" if c.is_static else "dynamic", "count": c.count,
         "version": c.version, "pending_version": c.pending_version, "is_calculating": c.is_calculating,
         "errors_calculating": c.errors_calculating, "last_calculation": c.last_calculation}
        for project in store.list_projects() for c in store.list_cohorts(project.id)
    ]
    return pl.DataFrame(rows, schema=COUNTS_SCHEMA)


def calculation_history(store: CohortStore, per_cohort: int = 20) -> pl.DataFrame:
    """The latest ``per_cohort`` calculations of every live cohort, newest first."""
    rows = [
        {"project_id": run.project_id, "cohort_id": run.cohort_id, "partition": cohort_key(run.project_id, run.cohort_id),
         "version": run.version, "started_at": run.started_at, "finished_at": run.finished_at, "count": run.count,
         "entered": run.entered, "exited": run.exited, "error": run.error, "error_code": run.error_code,
         "duration_ms": run.duration_ms}
        for project in store.list_projects() for c in store.list_cohorts(project.id)
        for run in store.calculation_history(c.id, limit=per_cohort)
    ]
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA).sort("started_at", descending=True, maintain_order=True)


def counts_markdown(counts: pl.DataFrame) -> str:
    lines = ["| cohort | name | kind | count | version | state |", "|---|---|---|---:|---:|---|"]
    for r in counts.iter_rows(named=True):
        if r["errors_calculating"]:
            state = f"{r['errors_calculating']} failed run(s)"
        elif r["is_calculating"]:
            state = "calculating"
        elif r["version"] is None:
            state = "never calculated"
        else:
            state = "ok"
        count = "" if r["count"] is None else f"{r['count']:,}"
        version = "" if r["version"] is None else str(r["version"])
        lines.append(f"| {r['partition']} | {r['name']} | {r['kind']} | {count} | {version} | {state} |")
    return "\n".join(lines)


def history_markdown(history: pl.DataFrame, limit: int = 25) -> str:
    lines = ["| started | cohort | version | count | entered | exited | result |", "|---|---|---:|---:|---:|---:|---|"]
    for r in history.head(limit).iter_rows(named=True):
        result = f"failed ({r['error_code']}): {r['error']}" if r["error"] else "published"
        cells = ["" if r[k] is None else f"{r[k]:,}" for k in ("count", "entered", "exited")]
        lines.append(f"| {r['started_at']:%Y-%m-%d %H:%M:%S} | {r['partition']} | {r['version'] or ''} | "
                     f"{cells[0]} | {cells[1]} | {cells[2]} | {result.replace('|', '/')} |")
    return "\n".join(lines)


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` through a temporary file, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.write_csv(temporary)
    os.replace(temporary, path)
    return path


__all__ = ["calculation_history", "cohort_counts", "counts_markdown", "history_markdown", "write_csv"]
