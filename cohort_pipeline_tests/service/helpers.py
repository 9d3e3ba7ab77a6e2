"""Shared by the service, CLI and Dagster tests: sample paths, definitions-file writers, a migrated store, and
expected memberships worked out from the raw sample files (plain Python over the Parquet tables, not the engine)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from cohort_pipeline.store import CohortStore

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
SAMPLE_DEFINITIONS = SAMPLE / "cohorts.json"
UPLOADS = SAMPLE / "uploads"
NOW_TEXT = "2026-11-01T12:00:00Z"

#: distinct ids in uploads/vip_customers.csv (distinct_id column; one blank id, user_99999 belongs to nobody)
VIP_DISTINCT_IDS = ["user_1000", "user_1001", "user_1004", "user_99999", "user_1002", "user_1005"]
#: emails in uploads/webinar_attendees.csv (not-a-customer@example.org belongs to nobody)
WEBINAR_EMAILS = ["quentin.patel34@gmail.com", "emma.tanaka180@gmail.com", "not-a-customer@example.org"]


def sample_json() -> dict[str, Any]:
    """A fresh copy of the sample definitions, to edit in a test."""
    return json.loads(SAMPLE_DEFINITIONS.read_text(encoding="utf-8"))


def sample_cohort(spec: dict[str, Any], project_id: int, cohort_id: int) -> dict[str, Any]:
    project = next(p for p in spec["projects"] if p["id"] == project_id)
    return next(c for c in project["cohorts"] if c["id"] == cohort_id)


def absolute_csv_paths(spec: dict[str, Any]) -> dict[str, Any]:
    """Point every ``csv`` of ``spec`` at the sample uploads, so the file can be written anywhere."""
    for project in spec["projects"]:
        for cohort in project.get("cohorts", []):
            if isinstance(cohort.get("csv"), str) and not Path(cohort["csv"]).is_absolute():
                cohort["csv"] = str(SAMPLE / cohort["csv"])
    return spec


def write_json(path: Path, spec: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path


def person_leaf(key: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    leaf = {"type": "person", "key": key, "operator": operator, **extra}
    if value is not None:
        leaf["value"] = value
    return leaf


def cohort_leaf(cohort_id: int, negation: bool = False) -> dict[str, Any]:
    return {"type": "cohort", "key": "id", "value": cohort_id, "negation": negation}


def dynamic(cohort_id: int, name: str, *leaves: dict[str, Any], group: str = "AND") -> dict[str, Any]:
    return {"id": cohort_id, "name": name, "filters": {"properties": {"type": group, "values": list(leaves)}}}


# --- expected values from the raw sample tables -----------------------------------------------------------------

@cache
def _persons(project_id: int) -> tuple[tuple[str, dict[str, Any]], ...]:
    frame = pl.read_parquet(SAMPLE / f"project_{project_id}" / "persons.parquet")
    return tuple((row["id"], json.loads(row["properties"] or "{}")) for row in frame.iter_rows(named=True))


@cache
def _distinct_ids(project_id: int) -> dict[str, str]:
    frame = pl.read_parquet(SAMPLE / f"project_{project_id}" / "person_distinct_ids.parquet")
    return dict(zip(frame["distinct_id"], frame["person_id"], strict=True))


def person_ids(project_id: int) -> set[str]:
    return {pid for pid, _ in _persons(project_id)}


def persons_where(project_id: int, predicate: Callable[[dict[str, Any]], bool]) -> set[str]:
    """Ids of the persons of ``project_id`` whose property document satisfies ``predicate``."""
    return {pid for pid, props in _persons(project_id) if predicate(props)}


def persons_of_distinct_ids(project_id: int, distinct_ids: list[str]) -> set[str]:
    mapping = _distinct_ids(project_id)
    return {mapping[d] for d in distinct_ids if d in mapping}


def persons_with_emails(project_id: int, emails: list[str]) -> set[str]:
    return persons_where(project_id, lambda props: props.get("email") in emails)


# --- store ---------------------------------------------------------------------------------------------------------

def migrated_template(directory: Path) -> Path:
    path = directory / "store.db"
    store = CohortStore(f"sqlite:///{path}")
    store.migrate()
    store.close()
    return path


def store_copy(template: Path, directory: Path) -> tuple[CohortStore, str]:
    """A fresh migrated SQLite store in ``directory`` (a copy of ``template``) and its URL."""
    path = directory / "store.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    return CohortStore(url), url


def store_snapshot(store: CohortStore) -> dict[str, Any]:
    """Everything a reader can see in the store: projects, cohorts (deleted too), their history and members."""
    snapshot: dict[str, Any] = {"projects": store.list_projects(), "cohorts": {}, "history": {}, "members": {}}
    for project in snapshot["projects"]:
        for cohort in store.list_cohorts(project.id, include_deleted=True):
            snapshot["cohorts"][cohort.id] = cohort
            snapshot["history"][cohort.id] = store.calculation_history(cohort.id)
            snapshot["members"][cohort.id] = store.members(cohort.id)
    return snapshot
