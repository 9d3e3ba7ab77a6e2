"""The one-call CSV import, and PostHog's CSV conformance cases run through it.

Conformance files are read from ``cohort_pipeline_tests/fixtures/conformance/`` when the project has its own
copy, else from the shared ``/work/shared/conformance``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cohort_pipeline.errors import CSVImportError
from cohort_pipeline.static import ParsedCSV, StaticImport, StaticMatch, import_static_csv

PROJECT_CONFORMANCE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
SHARED_CONFORMANCE_DIR = Path("/work/shared/conformance")
CSV_CASE_GLOB = "*_csv_*.json"


def conformance_dir() -> Path | None:
    """The project's conformance fixtures if present, else the shared ones, else ``None``."""
    return next((d for d in (PROJECT_CONFORMANCE_DIR, SHARED_CONFORMANCE_DIR) if d.is_dir()), None)


def csv_case_files() -> list[Path]:
    directory = conformance_dir()
    return sorted(directory.glob(CSV_CASE_GLOB)) if directory else []


def project_frames(persons: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str]]:
    """``persons`` / ``person_distinct_ids`` frames of a case, plus a map from frame id back to the case's id.

    A case person with a ``uuid`` is stored under it (its CSV refers to it by UUID, as PostHog's person id is the
    UUID); the others under their short ``id``.
    """
    stored_id = {p["id"]: p.get("uuid", p["id"]) for p in persons}
    persons_df = pl.DataFrame(
        {
            "id": [stored_id[p["id"]] for p in persons],
            "created_at": [datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")) for p in persons],
            "properties": [json.dumps(p.get("properties") or {}) for p in persons],
        },
        schema={"id": pl.String, "created_at": pl.Datetime("us", "UTC"), "properties": pl.String},
    )
    distinct_ids_df = pl.DataFrame(
        [(d, stored_id[p["id"]]) for p in persons for d in p.get("distinct_ids", [])],
        schema={"distinct_id": pl.String, "person_id": pl.String},
        orient="row",
    )
    return persons_df, distinct_ids_df, {v: k for k, v in stored_id.items()}


def test_conformance_cases_are_found() -> None:
    if conformance_dir() is None:
        pytest.skip("no conformance fixtures on this machine")
    assert csv_case_files(), f"no {CSV_CASE_GLOB} in {conformance_dir()}"


@pytest.mark.parametrize("case_file", csv_case_files(), ids=lambda path: path.stem)
def test_conformance_case(case_file: Path) -> None:
    case = json.loads(case_file.read_text(encoding="utf-8"))
    assert case["cohort"]["is_static"] is True
    persons, distinct_ids, case_id = project_frames(case["persons"])
    result = import_static_csv(case["cohort"]["csv"].encode("utf-8"), persons, distinct_ids)
    assert sorted(case_id[pid] for pid in result.person_ids) == sorted(case["expected_members"])


# --- the one call ----------------------------------------------------------------------------------------------

PERSONS = pl.DataFrame(
    {
        "id": ["p1", "p2", "p3"],
        "properties": [json.dumps({"email": "a@x.com"}), json.dumps({"email": "b@x.com"}), "{}"],
    }
)
DISTINCT_IDS = pl.DataFrame({"distinct_id": ["d1", "d1-bis", "d2", "d3"], "person_id": ["p1", "p1", "p2", "p3"]})


def test_import_carries_both_stages() -> None:
    upload = b"name,distinct_id\nA,d1\nA again,d1-bis\nshort\nB,d2\nX,unknown\nA,d1\n"
    result = import_static_csv(upload, PERSONS, DISTINCT_IDS)
    assert result == StaticImport(
        parsed=ParsedCSV("distinct_id", ["d1", "d1-bis", "d2", "unknown", "d1"], 6, 1, None),
        match=StaticMatch(
            person_ids=["p1", "p2"], ids_submitted=4, persons_matched=2, unmatched_count=1, unmatched_sample=["unknown"]
        ),
    )
    assert result.person_ids == ["p1", "p2"]


@pytest.mark.parametrize(
    ("upload", "members"),
    [
        (b"email\na@x.com\nB@X.COM\n", ["p1"]),
        (b"Person .id\np3\np9\n", ["p3"]),
        (b"d3\nd2\n", ["p2", "p3"]),
        (b"e-mail,person_id\na@x.com,p2\n", ["p2"]),
    ],
    ids=["email", "export_person_id", "headerless_distinct_ids", "person_id_over_email"],
)
def test_import_members(upload: bytes, members: list[str]) -> None:
    assert import_static_csv(upload, PERSONS.lazy(), DISTINCT_IDS.lazy()).person_ids == members


def test_reimport_is_idempotent() -> None:
    """Spec 7.4: the same file resolves to the same members, so re-adding them adds nothing."""
    upload = b"distinct_id,n\nd1,1\nd2,2\n"
    assert import_static_csv(upload, PERSONS, DISTINCT_IDS) == import_static_csv(upload, PERSONS, DISTINCT_IDS)


def test_rejected_upload_never_reaches_matching() -> None:
    with pytest.raises(CSVImportError) as excinfo:
        import_static_csv(b"name,age\nx,1\n", PERSONS, DISTINCT_IDS)
    assert excinfo.value.detail.endswith("Found columns: name, age")
