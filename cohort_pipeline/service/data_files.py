"""When did a project's data files last change? Cheap stat-based fingerprints of the person and event tables.

The pipeline never copies the data: it reads ``<data_dir>/project_<id>/<table>.<parquet|csv|ndjson|jsonl>`` in
place. A new delivery replaces or rewrites those files, so a file's name, size and modification time say whether
it is new without reading it. The data sensor compares these fingerprints between ticks, and static cohorts use
the persons file's modification time to tell whether persons were added since their last import.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cohort_pipeline.errors import DataSourceError
from cohort_pipeline.sources import FORMATS, TABLES, find_table_file, list_projects, scan_table

TableFingerprint = str
"""``"<file name>:<size>:<mtime ns>"``, or ``"absent"``."""

ABSENT: TableFingerprint = "absent"


def _table_files(project_dir: Path, table: str) -> list[Path]:
    return sorted(p for p in (project_dir / f"{table}{ext}" for ext in FORMATS) if p.is_file())


def table_fingerprints(data_dir: Path, project_id: int) -> dict[str, TableFingerprint]:
    """``{table: fingerprint}`` for persons, person_distinct_ids and events of one project."""
    project_dir = Path(data_dir) / f"project_{project_id}"
    fingerprints = {}
    for table in TABLES:
        files = _table_files(project_dir, table)
        parts = []
        for path in files:
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
        fingerprints[table] = "|".join(parts) or ABSENT
    return fingerprints


def persons_changed_at(data_dir: Path, project_id: int) -> datetime | None:
    """When the project's persons (or their distinct ids) were last written; ``None`` when there is no such file."""
    project_dir = Path(data_dir) / f"project_{project_id}"
    times = [path.stat().st_mtime for table in ("persons", "person_distinct_ids")
             for path in _table_files(project_dir, table)]
    return datetime.fromtimestamp(max(times), UTC) if times else None




def table_rows(data_dir: Path, project_ids: list[int], table: str) -> tuple[dict[int, int], dict[int, str]]:
    """Rows of one table per project, read and checked against the data contract, and the problem of each project
    whose file is missing or malformed (a project without an events file has no events: 0 rows)."""
    rows: dict[int, int] = {}
    problems: dict[int, str] = {}
    for project_id in project_ids:
        project_dir = Path(data_dir) / f"project_{project_id}"
        try:
            if not project_dir.is_dir():
                raise DataSourceError(f"{project_dir}: project directory not found")
            if table == "events" and not _table_files(project_dir, table):
                rows[project_id] = 0
                continue
            frame = scan_table(find_table_file(project_dir, table), table)  # type: ignore[arg-type]
            rows[project_id] = int(frame.select(pl.len()).collect().item())
        except (DataSourceError, pl.exceptions.PolarsError, OSError) as error:
            problems[project_id] = str(error).strip().splitlines()[0]
    return rows, problems


def data_project_ids(data_dir: Path) -> list[int]:
    """Ids of the ``project_<id>`` folders of ``data_dir`` (none when the folder does not exist)."""
    return list_projects(data_dir) if Path(data_dir).is_dir() else []


__all__ = ["ABSENT", "TableFingerprint", "data_project_ids", "persons_changed_at", "table_fingerprints", "table_rows"]
