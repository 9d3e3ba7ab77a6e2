"""The ``cohort-pipeline`` command: ``evaluate`` agrees with the library entry point on the sample, bad input is
one line on stderr with exit status 2, a failed cohort is exit status 1, ``data generate`` is deterministic and
``run`` publishes every cohort to the store it is given."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from cohort_pipeline import evaluate_cohorts, import_static_csv
from cohort_pipeline.cli import app
from cohort_pipeline.sources import load_project
from cohort_pipeline.store import CohortStore
from cohort_pipeline_tests.service.helpers import (
    NOW_TEXT,
    SAMPLE,
    SAMPLE_DEFINITIONS,
    UPLOADS,
    dynamic,
    person_leaf,
    persons_where,
    sample_json,
    write_json,
)

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
WIDE = {"COLUMNS": "250"}  # so table cells are not wrapped


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args], env=WIDE)


def error_line(result: Result) -> str:
    """The one line a failed command prints on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def row_pattern(name: str, count: int | str) -> str:
    return rf"│ {re.escape(name)}\s*│ (static|dynamic)\s*│\s*{re.escape(str(count))} │"


# --------------------------------------------------------------------------------------------------------------
# evaluate: identical to evaluate_cohorts on the sample
# --------------------------------------------------------------------------------------------------------------


def library_memberships() -> pl.DataFrame:
    """The sample evaluated through the public library functions only (README "Library use")."""
    frames = []
    for project in sample_json()["projects"]:
        data = load_project(SAMPLE, project["id"])
        static = {
            cohort["id"]: import_static_csv((SAMPLE / cohort["csv"]).read_bytes(), data.persons,
                                            data.person_distinct_ids).person_ids
            for cohort in project["cohorts"] if "csv" in cohort
        }
        members = evaluate_cohorts(
            [{k: v for k, v in cohort.items() if k != "csv"} for cohort in project["cohorts"]],
            data.persons, data.person_distinct_ids, data.events, now=NOW, timezone=project["timezone"],
            property_definitions=project.get("property_definitions"),
            test_account_filters=project.get("test_account_filters", []), static_memberships=static,
            actions=project.get("actions", []))
        frames.append(members.select(pl.lit(project["id"], pl.Int64).alias("project_id"), "cohort_id", "person_id"))
    return pl.concat(frames).sort("project_id", "cohort_id", "person_id")


@pytest.fixture(scope="module")
def evaluated(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("evaluate") / "out"
    result = invoke(runner, "evaluate", SAMPLE, "--definitions", SAMPLE_DEFINITIONS, "--now", NOW_TEXT,
                    "--output", out)
    return result, out


def test_evaluate_writes_the_same_members_as_the_library(evaluated: tuple[Result, Path]) -> None:
    result, out = evaluated
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cohort_counts.csv", "memberships.parquet"]
    written = pl.read_parquet(out / "memberships.parquet")
    assert written.schema == pl.Schema({"project_id": pl.Int64, "cohort_id": pl.Int64, "person_id": pl.String})
    expected = library_memberships()
    assert written.sort("project_id", "cohort_id", "person_id").equals(expected)
    # every cohort of the file has members on the sample, so a missing cohort cannot hide in an empty set
    cohort_ids = {c["id"] for p in sample_json()["projects"] for c in p["cohorts"]}
    assert set(expected["cohort_id"]) == cohort_ids


def test_evaluate_counts_table(evaluated: tuple[Result, Path]) -> None:
    result, out = evaluated
    counts = pl.read_csv(out / "cohort_counts.csv")
    assert counts.columns == ["project_id", "cohort_id", "name", "is_static", "count", "error"]
    membership_counts = {
        (row["project_id"], row["cohort_id"]): row["len"]
        for row in library_memberships().group_by("project_id", "cohort_id").len().iter_rows(named=True)
    }
    files_cohorts = [(p["id"], c) for p in sample_json()["projects"] for c in p["cohorts"]]
    assert len(counts) == len(files_cohorts)
    for row, (project_id, cohort) in zip(counts.iter_rows(named=True), files_cohorts, strict=True):
        assert (row["project_id"], row["cohort_id"], row["name"], row["is_static"]) == (
            project_id, cohort["id"], cohort["name"], cohort.get("is_static", False))
        assert row["count"] == membership_counts[(project_id, cohort["id"])]
        assert row["error"] is None
        assert re.search(row_pattern(cohort["name"], row["count"]), result.stdout), cohort["name"]


# --------------------------------------------------------------------------------------------------------------
# evaluate: bad input is one line and exit status 2; nothing is written
# --------------------------------------------------------------------------------------------------------------


def minimal_data(root: Path, persons_csv: str) -> Path:
    (root / "project_1").mkdir(parents=True)
    (root / "project_1" / "persons.csv").write_text(persons_csv, encoding="utf-8")
    (root / "project_1" / "person_distinct_ids.csv").write_text("distinct_id,person_id\nd1,p1\n", encoding="utf-8")
    return root


def one_cohort_file(path: Path, *cohorts: dict[str, Any]) -> Path:
    return write_json(path, {"projects": [{"id": 1, "name": "P", "cohorts": list(cohorts)
                                           or [dynamic(1, "Pro", person_leaf("plan", "exact", "pro"))]}]})


def test_bad_definitions_file(runner: CliRunner, tmp_path: Path) -> None:
    bad = one_cohort_file(tmp_path / "c.json", dynamic(4, "Likes pro", person_leaf("plan", "likes", "pro")))
    result = invoke(runner, "evaluate", SAMPLE, "--definitions", bad, "--now", NOW_TEXT, "--output", tmp_path / "o")
    assert result.exit_code == 2
    assert error_line(result).startswith(
        "error: project 1, cohort 4 (Likes pro): filters.properties.values[0]: Unknown operator 'likes' for "
        "person filter. Supported operators: exact, ")
    assert not (tmp_path / "o").exists()


def test_error_text_is_not_read_as_markup(runner: CliRunner, tmp_path: Path) -> None:
    bad = one_cohort_file(tmp_path / "c.json", dynamic(4, "[VIP] regex", person_leaf("email", "regex", "[a-z")))
    result = invoke(runner, "evaluate", SAMPLE, "--definitions", bad, "--now", NOW_TEXT, "--output", tmp_path / "o")
    assert result.exit_code == 2
    assert error_line(result).startswith("error: project 1, cohort 4 ([VIP] regex): filters.properties.values[0]: "
                                         "Invalid regular expression '[a-z' for operator 'regex'")


def test_missing_definitions_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = invoke(runner, "evaluate", SAMPLE, "--definitions", missing, "--output", tmp_path / "o")
    assert result.exit_code == 2
    assert error_line(result) == f"error: cannot read definitions file {missing}: No such file or directory"


@pytest.mark.parametrize("now", ["yesterday", "2026-13-01", "01/11/2026"])
def test_bad_now(runner: CliRunner, tmp_path: Path, now: str) -> None:
    result = invoke(runner, "evaluate", SAMPLE, "--definitions", SAMPLE_DEFINITIONS, "--now", now,
                    "--output", tmp_path / "o")
    assert result.exit_code == 2
    assert error_line(result) == f"error: --now: '{now}' is not an ISO-8601 datetime (e.g. 2026-11-01T12:00:00Z)"
    assert not (tmp_path / "o").exists()


def test_missing_data_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "evaluate", tmp_path / "nowhere", "--definitions", SAMPLE_DEFINITIONS, "--now",
                    NOW_TEXT, "--output", tmp_path / "o")
    assert result.exit_code == 2
    assert error_line(result) == f"error: {tmp_path / 'nowhere' / 'project_1'}: project directory not found"
    assert not (tmp_path / "o").exists()


def test_malformed_data_file(runner: CliRunner, tmp_path: Path) -> None:
    data = minimal_data(tmp_path / "data", "person_id,properties\np1,{}\n")  # no "id" column
    definitions = one_cohort_file(tmp_path / "c.json")
    result = invoke(runner, "evaluate", data, "--definitions", definitions, "--now", NOW_TEXT,
                    "--output", tmp_path / "o")
    assert result.exit_code == 2
    assert error_line(result) == (f"error: {data / 'project_1' / 'persons.csv'}: missing required column(s) id "
                                  "(found: person_id, properties)")
    assert not (tmp_path / "o").exists()


def test_a_failed_cohort_is_exit_1_and_the_others_are_written(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "broken.csv").write_bytes(b"\xff\xfe\x00garbage")
    definitions = one_cohort_file(
        tmp_path / "c.json",
        dynamic(1, "Pro", person_leaf("plan", "exact", "pro")),
        {"id": 2, "name": "[Broken] upload", "is_static": True, "csv": "broken.csv"},
        {"id": 3, "name": "VIP", "is_static": True, "csv": str(UPLOADS / "vip_customers.csv")},
    )
    result = invoke(runner, "evaluate", SAMPLE, "--definitions", definitions, "--now", NOW_TEXT,
                    "--output", tmp_path / "o")
    assert result.exit_code == 1
    pros = len(persons_where(1, lambda props: props.get("plan") == "pro"))
    counts = pl.read_csv(tmp_path / "o" / "cohort_counts.csv")
    assert counts.select("cohort_id", "count", "error").rows() == [
        (1, pros, None),
        (2, None, "csv: CSV file encoding is not supported. Please save your file as UTF-8 and try again."),
        (3, 5, None),  # the five VIP distinct ids that exist in project 1
    ]
    written = pl.read_parquet(tmp_path / "o" / "memberships.parquet")
    assert written.group_by("cohort_id").len().sort("cohort_id").rows() == [(1, pros), (3, 5)]
    assert "│ [Broken] upload" in result.stdout  # names are text, not markup
    assert "failed: csv: CSV file encoding is not supported." in result.stdout


# --------------------------------------------------------------------------------------------------------------
# data generate
# --------------------------------------------------------------------------------------------------------------


def generate(runner: CliRunner, out: Path, seed: int) -> Result:
    return invoke(runner, "data", "generate", "--persons", "40", "--events", "300", "--seed", str(seed),
                  "--projects", "1,2", "--days", "10", "--out", out)


def test_data_generate_writes_the_layout_deterministically(runner: CliRunner, tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, 5), (second, 5), (other, 6)):
        result = generate(runner, out, seed)
        assert result.exit_code == 0, result.stderr
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert files == [f"project_{p}/{t}.parquet" for p in (1, 2) for t in ("events", "person_distinct_ids",
                                                                           "persons")]
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert any((first / name).read_bytes() != (other / name).read_bytes() for name in files)
    data = load_project(first, 2)
    assert data.persons.collect().height == 40
    assert data.events.collect().height == 300


# --------------------------------------------------------------------------------------------------------------
# run (the Dagster job, in-process)
# --------------------------------------------------------------------------------------------------------------


def sample_counts(runner: CliRunner, tmp_path: Path) -> pl.DataFrame:
    """Counts of the sample from ``evaluate`` as of NOW (``run`` is given the same ``--as-of``)."""
    out = tmp_path / "evaluate"
    assert invoke(runner, "evaluate", SAMPLE, "--definitions", SAMPLE_DEFINITIONS, "--now", NOW_TEXT,
                  "--output", out).exit_code == 0
    return pl.read_csv(out / "cohort_counts.csv")


def run_args(tmp_path: Path, definitions: Path = SAMPLE_DEFINITIONS, data_dir: Path = SAMPLE) -> list[str | Path]:
    return ["run", "--data-dir", data_dir, "--definitions", definitions, "--store-url",
            f"sqlite:///{tmp_path / 'store.db'}", "--state-dir", tmp_path / "state", "--as-of", NOW_TEXT]


def test_run_publishes_every_cohort_and_prints_its_count(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, *run_args(tmp_path))
    assert result.exit_code == 0, result.stdout + result.stderr
    store = CohortStore(f"sqlite:///{tmp_path / 'store.db'}")
    counts = sample_counts(runner, tmp_path)
    for project in sample_json()["projects"]:
        stored = {c.id: c for c in store.list_cohorts(project["id"])}
        assert list(stored) == [c["id"] for c in project["cohorts"]]
        for cohort in project["cohorts"]:
            record = stored[cohort["id"]]
            expected = counts.filter(pl.col("cohort_id") == cohort["id"])["count"].item()
            assert (record.name, record.version, record.count) == (cohort["name"], 1, expected)
            assert len(store.members(cohort["id"])) == expected
            assert re.search(row_pattern(cohort["name"], expected), result.stdout), cohort["name"]


def test_run_again_recalculates_dynamic_cohorts_and_leaves_static_ones_alone(runner: CliRunner,
                                                                             tmp_path: Path) -> None:
    assert invoke(runner, *run_args(tmp_path)).exit_code == 0
    second = invoke(runner, *run_args(tmp_path))
    assert second.exit_code == 0, second.stderr
    store = CohortStore(f"sqlite:///{tmp_path / 'store.db'}")
    versions = {c.id: c.version for p in (1, 2) for c in store.list_cohorts(p)}
    assert {cid for cid, version in versions.items() if version == 1} == {9, 10, 11, 102}
    assert set(versions.values()) == {1, 2}
    assert re.search(row_pattern("VIP customers (CSV upload)", 5), second.stdout)


def test_run_with_a_bad_definitions_file_touches_nothing(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text("{", encoding="utf-8")
    result = invoke(runner, *run_args(tmp_path, definitions=bad))
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: definitions file {bad} is not valid JSON: ")
    assert not (tmp_path / "store.db").exists()
    assert not (tmp_path / "state").exists()


def test_run_with_a_bad_as_of_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "run", "--as-of", "soon", "--store-url", f"sqlite:///{tmp_path / 'store.db'}")
    assert result.exit_code == 2
    assert error_line(result) == "error: --now: 'soon' is not an ISO-8601 datetime (e.g. 2026-11-01T12:00:00Z)"


def test_run_with_a_failing_cohort_is_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    shutil.copytree(UPLOADS, tmp_path / "uploads")
    (tmp_path / "uploads" / "vip_customers.csv").write_text("name,phone\nAda,1\n", encoding="utf-8")
    definitions = write_json(tmp_path / "cohorts.json", sample_json())
    result = invoke(runner, *run_args(tmp_path, definitions=definitions))
    assert result.exit_code == 1
    # 9 and 102 use the broken upload; 13 references 9; every other cohort is published
    store = CohortStore(f"sqlite:///{tmp_path / 'store.db'}")
    unpublished = {c.id for p in (1, 2) for c in store.list_cohorts(p) if c.version is None}
    assert unpublished == {9, 13, 102}
    assert "cohort_membership failed: 3 of 23 cohorts failed; the others were published." in result.stderr
    assert "cohort 13 (Gmail or VIP, outside the paying customers): Referenced cohort 9 failed: csv: " \
           "Multi-column CSV must contain" in result.stderr
    assert "failed: Referenced cohort 9 failed: csv: Multi-column CSV" in result.stdout
    assert re.search(row_pattern("Free plan", store.get_cohort(2, 101).count), result.stdout)


def test_run_with_a_missing_data_folder_names_it(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, *run_args(tmp_path, data_dir=tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "cohort_membership failed: 23 of 23 cohorts failed; nothing was published." in result.stderr
    for project, cohort in ((1, "Paying customers"), (2, "Free plan")):
        problem = f"{tmp_path / 'nowhere' / f'project_{project}'}: project directory not found"
        assert f"({cohort}): {problem}" in result.stderr
        assert re.search(row_pattern(cohort, f"failed: {problem}"), result.stdout.replace("\n", ""))
    store = CohortStore(f"sqlite:///{tmp_path / 'store.db'}")
    assert store.calculation_history(1)[0].error.endswith("project directory not found")
