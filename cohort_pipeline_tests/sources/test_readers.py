"""scan_table / find_table_file: every format reads to the contract's frames, and bad files fail at load."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from cohort_pipeline.errors import DataSourceError
from cohort_pipeline.sources import EVENTS_SCHEMA, TABLES, find_table_file, scan_table, table_schema
from cohort_pipeline_tests.sources.conftest import FORMATS, WriteFile

# ---------------------------------------------------------------------------------------------- formats agree


@pytest.mark.parametrize("table", TABLES)
def test_every_format_reads_to_identical_frames(generated: dict[str, Path], table: str) -> None:
    frames = {fmt: scan_table(generated[fmt] / "project_1" / f"{table}.{fmt}", table).collect() for fmt in FORMATS}
    assert frames["parquet"].schema == table_schema(table)
    assert frames["parquet"].height > 0
    for fmt in ("csv", "ndjson"):
        assert_frame_equal(frames[fmt], frames["parquet"])


def test_jsonl_extension_is_ndjson(generated: dict[str, Path], tmp_path: Path) -> None:
    source = generated["ndjson"] / "project_1" / "events.ndjson"
    jsonl = shutil.copy(source, tmp_path / "events.jsonl")
    assert_frame_equal(scan_table(Path(jsonl), "events").collect(), scan_table(source, "events").collect())


# ------------------------------------------------------------------------------------------------- properties


def _parsed(properties: pl.Series) -> list[dict[str, object]]:
    """JSON objects with null members dropped: a missing key and a JSON null mean the same (spec clarif. 10)."""
    return [{k: v for k, v in json.loads(text).items() if v is not None} for text in properties]


def test_struct_properties_equal_json_text(write_file: WriteFile) -> None:
    rows = [
        {"email": "a@x.io", "age": 31, "is_beta": True, "name": ""},
        {"email": None, "age": 40, "is_beta": False, "name": "Bo"},
        None,
    ]
    as_struct = pl.DataFrame({"id": ["p1", "p2", "p3"], "properties": rows})
    as_text = pl.DataFrame({
        "id": ["p1", "p2", "p3"],
        "properties": [json.dumps(row) if row else None for row in rows],
    })
    assert as_struct.schema["properties"].base_type() is pl.Struct
    struct_frame = scan_table(write_file("s/persons.parquet", as_struct), "persons").collect()
    text_frame = scan_table(write_file("t/persons.parquet", as_text), "persons").collect()
    assert struct_frame["properties"][2] == "{}" == text_frame["properties"][2]
    assert _parsed(struct_frame["properties"]) == _parsed(text_frame["properties"])
    assert _parsed(struct_frame["properties"])[0] == {"email": "a@x.io", "age": 31, "is_beta": True, "name": ""}


def test_absent_or_null_properties_become_empty_object(write_file: WriteFile) -> None:
    absent = write_file("persons.csv", "id\np1\n")
    null = write_file("persons.ndjson", '{"id": "p1", "properties": null}\n{"id": "p2"}\n')
    assert scan_table(absent, "persons").collect()["properties"].to_list() == ["{}"]
    assert scan_table(null, "persons").collect()["properties"].to_list() == ["{}", "{}"]


def test_ndjson_properties_keep_json_value_kinds(write_file: WriteFile) -> None:
    """An object is kept as JSON text, so 42 and "42" stay distinct; a JSON-string document is taken as text."""
    path = write_file(
        "persons.ndjson",
        '{"id": "p1", "properties": {"score": 42, "flag": true, "empty": "", "gone": null}}\n'
        '{"id": "p2", "properties": {"score": "42"}}\n'
        '{"id": "p3", "properties": "{\\"score\\": 7}"}\n',
    )
    parsed = [json.loads(text) for text in scan_table(path, "persons").collect()["properties"]]
    assert parsed == [{"score": 42, "flag": True, "empty": "", "gone": None}, {"score": "42"}, {"score": 7}]


# ------------------------------------------------------------------------------------------------- timestamps

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00+02:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T10:00:00-0530", datetime(2026, 3, 1, 15, 30, tzinfo=UTC)),
        ("2026-03-01T10:00:00+05", datetime(2026, 3, 1, 5, tzinfo=UTC)),
        ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),  # naive = UTC
        ("2026-03-01 10:00:00.123456", datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T10:00:00.5Z", datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-01T10:00:00.123456789+00:00", datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T10:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("  2026-03-01T10:00:00z ", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_text_timestamps_parse_to_utc(write_file: WriteFile, text: str, expected: datetime) -> None:
    for name in ("events.csv", "events.ndjson"):
        frame = pl.DataFrame({"event": ["e"], "distinct_id": ["d"], "timestamp": [text]})
        got = scan_table(write_file(name, frame), "events").collect()
        assert got.schema["timestamp"] == pl.Datetime("us", "UTC")
        assert got["timestamp"].to_list() == [expected]


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Berlin", "America/New_York"])
def test_datetime_columns_of_any_unit_and_zone_become_utc_micros(write_file: WriteFile, unit: str,
                                                                 zone: str | None) -> None:
    wall = datetime(2026, 7, 1, 12, 30, 15, 250000)
    column = pl.Series("timestamp", [wall]).cast(pl.Datetime(unit))
    column = column.dt.replace_time_zone(zone) if zone else column
    frame = pl.DataFrame({"event": ["e"], "distinct_id": ["d"]}).with_columns(column)
    got = scan_table(write_file("events.parquet", frame), "events").collect()
    expected = wall.replace(tzinfo=ZoneInfo(zone or "UTC")).astimezone(UTC)
    assert got.schema == EVENTS_SCHEMA
    assert got["timestamp"].to_list() == [expected]


def test_date_column_is_midnight_utc(write_file: WriteFile) -> None:
    frame = pl.DataFrame({"id": ["p1"], "created_at": [date(2026, 5, 4)]})
    got = scan_table(write_file("persons.parquet", frame), "persons").collect()
    assert got["created_at"].to_list() == [datetime(2026, 5, 4, tzinfo=UTC)]


# ------------------------------------------------------------------------------- ids, extras, optional columns


def test_integer_ids_become_text_and_csv_keeps_leading_zeros(write_file: WriteFile) -> None:
    parquet = write_file("a/person_distinct_ids.parquet", pl.DataFrame({"distinct_id": [7, 8], "person_id": [1, 1]}))
    csv = write_file("b/person_distinct_ids.csv", "distinct_id,person_id\n007,0001\n8,0001\n")
    assert scan_table(parquet, "person_distinct_ids").collect().rows() == [("7", "1"), ("8", "1")]
    assert scan_table(csv, "person_distinct_ids").collect().rows() == [("007", "0001"), ("8", "0001")]


def test_extra_columns_are_dropped_and_columns_come_in_contract_order(write_file: WriteFile) -> None:
    frame = pl.DataFrame({"properties": ['{"a": 1}'], "team_id": [2], "id": ["p1"], "created_at": ["2026-01-01"]})
    got = scan_table(write_file("persons.csv", frame), "persons").collect()
    assert got.columns == ["id", "created_at", "properties"]


def test_optional_columns_are_filled(write_file: WriteFile) -> None:
    events = pl.DataFrame({
        "uuid": ["u1", None, "u3"],
        "event": ["a", "b", "c"],
        "distinct_id": ["d", "d", "d"],
        "timestamp": ["2026-01-01T00:00:00Z"] * 3,
    })
    no_uuid = events.drop("uuid")
    assert scan_table(write_file("x/events.csv", events), "events").collect()["uuid"].to_list() == [
        "u1", "row-2", "u3"
    ]
    loaded = scan_table(write_file("y/events.parquet", no_uuid), "events").collect()
    assert loaded["uuid"].to_list() == ["row-1", "row-2", "row-3"]
    assert loaded["properties"].to_list() == ["{}"] * 3
    persons = scan_table(write_file("persons.ndjson", '{"id": "p1"}\n'), "persons").collect()
    assert persons.schema == table_schema("persons")
    assert persons.row(0) == ("p1", None, "{}")


def test_empty_tables_read_with_the_contract_schema(write_file: WriteFile) -> None:
    header_only = write_file("events.csv", "uuid,event,distinct_id,timestamp,properties\n")
    empty_ndjson = write_file("events.ndjson", "")
    for path in (header_only, empty_ndjson):
        frame = scan_table(path, "events").collect()
        assert frame.height == 0
        assert frame.schema == EVENTS_SCHEMA


def test_canonical_timestamps_still_push_filters_into_the_parquet_scan(generated: dict[str, Path]) -> None:
    """A column already in the contract's dtype is passed through, so time-range filters prune row groups."""
    events = scan_table(generated["parquet"] / "project_1" / "events.parquet", "events")
    plan = events.filter(pl.col("timestamp") > datetime(2026, 10, 1, tzinfo=UTC)).explain()
    assert "SELECTION" in plan.split("SCAN")[-1]


# ------------------------------------------------------------------------------------------------ error paths

EVENT_HEADER = "event,distinct_id,timestamp\n"

ERROR_CASES = {
    "unsupported extension": ("events.txt", "x", "unsupported file type '.txt'"),
    "corrupt parquet": ("events.parquet", b"PAR1 not really", "cannot read as Parquet"),
    "malformed ndjson": ("events.ndjson", '{"event": "a"}\n{oops\n', "cannot read as NDJSON"),
    "zero-byte csv": ("events.csv", "", "cannot read as CSV"),
    "ragged csv": ("events.csv", EVENT_HEADER + "a,d,2026-01-01,extra,extra\n", "cannot read as CSV"),
    "missing columns": ("events.csv", "event,properties\na,{}\n", "missing required column(s) distinct_id, timestamp"),
    "bad timestamp": (
        "events.csv",
        EVENT_HEADER + "a,d,2026-01-01T00:00:00Z\nb,d,yesterday\n",
        "column 'timestamp': 'yesterday' (row 2) is not an ISO-8601 timestamp",
    ),
    "impossible date": (
        "events.ndjson",
        '{"event": "a", "distinct_id": "d", "timestamp": "2026-02-30T00:00:00Z"}\n',
        "'2026-02-30T00:00:00Z' (row 1) is not an ISO-8601 timestamp",
    ),
    "epoch in ndjson": (
        "events.ndjson",
        '{"event": "a", "distinct_id": "d", "timestamp": 1767225600}\n',
        "'1767225600' (row 1) is not an ISO-8601 timestamp",
    ),
    "null required": ("events.csv", EVENT_HEADER + "a,d,2026-01-01\n,d,2026-01-02\n",
                      "column 'event' is required but row 2 is null"),
}


@pytest.mark.parametrize(("name", "content", "problem"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_malformed_files_fail_at_load_naming_file_and_problem(write_file: WriteFile, name: str,
                                                              content: str | bytes, problem: str) -> None:
    path = write_file(name, content)
    with pytest.raises(DataSourceError) as failure:
        scan_table(path, "events")
    assert str(failure.value).startswith(f"{path}: ")
    assert problem in str(failure.value)


DTYPE_CASES = {
    "epoch integers": (
        "events",
        {"event": ["a"], "distinct_id": ["d"], "timestamp": [1767225600]},
        "column 'timestamp' has dtype Int64; numeric epoch timestamps are ambiguous",
    ),
    "float ids": ("persons", {"id": [1.5]}, "column 'id' has dtype Float64; expected text"),
    "boolean event": (
        "events",
        {"event": [True], "distinct_id": ["d"], "timestamp": [datetime(2026, 1, 1)]},
        "column 'event' has dtype Boolean; expected text",
    ),
    "list properties": (
        "persons", {"id": ["p"], "properties": [[1, 2]]}, "column 'properties' has dtype List(Int64); expected JSON"
    ),
    "duplicate person": ("persons", {"id": ["p1", "p2", "p1"]}, "column 'id' must be unique but 'p1' appears"),
    "duplicate distinct id": (
        "person_distinct_ids",
        {"distinct_id": ["d1", "d1"], "person_id": ["p1", "p2"]},
        "column 'distinct_id' must be unique but 'd1' appears more than once (row 1)",
    ),
    "null person id": (
        "person_distinct_ids",
        {"distinct_id": ["d1", "d2"], "person_id": ["p1", None]},
        "column 'person_id' is required but row 2 is null",
    ),
}


@pytest.mark.parametrize(("table", "columns", "problem"), DTYPE_CASES.values(), ids=DTYPE_CASES.keys())
def test_wrong_dtypes_and_contract_violations_fail_at_load(write_file: WriteFile, table: str,
                                                           columns: dict[str, list[object]], problem: str) -> None:
    path = write_file(f"{table}.parquet", pl.DataFrame(columns))
    with pytest.raises(DataSourceError) as failure:
        scan_table(path, table)
    assert str(failure.value).startswith(f"{path}: ")
    assert problem in str(failure.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "persons.parquet"
    with pytest.raises(DataSourceError, match=r"persons\.parquet: file not found$"):
        scan_table(path, "persons")


def test_unknown_table_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table 'people'"):
        scan_table(tmp_path / "people.parquet", "people")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- finding files


def test_find_table_file_picks_the_one_supported_file(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text("")
    (tmp_path / "events.json").write_text("")  # not a supported extension: ignored
    assert find_table_file(tmp_path, "events") == tmp_path / "events.jsonl"


def test_find_table_file_without_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as failure:
        find_table_file(tmp_path, "persons")
    assert str(failure.value) == (
        f"{tmp_path}: no persons file (expected one of persons.parquet, persons.csv, persons.ndjson, persons.jsonl)"
    )


def test_find_table_file_refuses_to_choose_between_several(tmp_path: Path) -> None:
    (tmp_path / "persons.parquet").write_bytes(b"")
    (tmp_path / "persons.csv").write_text("")
    with pytest.raises(DataSourceError) as failure:
        find_table_file(tmp_path, "persons")
    assert str(failure.value) == f"{tmp_path}: several persons files (persons.parquet, persons.csv); keep exactly one"


@pytest.mark.parametrize("statistics", [True, False], ids=["with statistics", "without statistics"])
def test_parquet_nulls_are_found_whatever_the_footer_says(tmp_path: Path, statistics: bool) -> None:
    """A footer counting zero nulls settles a required column unread; one counting nulls, or no statistics at all,
    means the column is read, and the null is reported with its row (here in the third of four row groups)."""
    frame = pl.DataFrame({"distinct_id": [f"d{i}" for i in range(40)],
                          "person_id": [None if i == 25 else f"p{i}" for i in range(40)]})
    path = tmp_path / "person_distinct_ids.parquet"
    frame.write_parquet(path, row_group_size=10, statistics=statistics)
    assert pq.read_metadata(path).num_row_groups == 4
    with pytest.raises(DataSourceError, match="column 'person_id' is required but row 26 is null"):
        scan_table(path, "person_distinct_ids")


def test_parquet_footer_without_nulls_still_checks_uniqueness(tmp_path: Path) -> None:
    path = tmp_path / "persons.parquet"
    pl.DataFrame({"id": [f"p{i}" for i in range(30)] + ["p7"]}).write_parquet(path, row_group_size=8)
    with pytest.raises(DataSourceError, match="column 'id' must be unique but 'p7' appears more than once"):
        scan_table(path, "persons")
    clean = tmp_path / "clean" / "persons.parquet"
    clean.parent.mkdir()
    pl.DataFrame({"id": [f"p{i}" for i in range(30)]}).write_parquet(clean, row_group_size=8)
    assert scan_table(clean, "persons").collect().height == 30


def test_uniqueness_settled_by_hashes_falls_back_to_the_values(tmp_path: Path, monkeypatch) -> None:
    """Distinct hashes settle a unique column without searching it for duplicates; equal hashes (a collision,
    forced here by hashing every value to 0) make the reader search: none found means the column loads, one found
    is reported."""
    from cohort_pipeline.sources import readers

    monkeypatch.setattr(readers, "unique_hashes", lambda expr: expr.hash().clip(0, 0).n_unique() == pl.len())
    path = tmp_path / "persons.parquet"
    pl.DataFrame({"id": ["p1", "p2", "p3"]}).write_parquet(path)
    assert scan_table(path, "persons").collect()["id"].to_list() == ["p1", "p2", "p3"]
    duplicated = tmp_path / "duplicated" / "persons.parquet"
    duplicated.parent.mkdir()
    pl.DataFrame({"id": ["p1", "p2", "p2"]}).write_parquet(duplicated)
    with pytest.raises(DataSourceError, match="column 'id' must be unique but 'p2' appears more than once"):
        scan_table(duplicated, "persons")


def test_an_unchanged_file_is_checked_once_per_process_and_again_once_changed(tmp_path: Path, monkeypatch) -> None:
    """A Dagster run scans the same files in several steps: the value checks run once, and again after a rewrite."""
    from cohort_pipeline.sources import readers

    calls: list[Path] = []
    real = readers._run_checks
    monkeypatch.setattr(readers, "_run_checks", lambda path, *rest: (calls.append(path), real(path, *rest)))
    path = tmp_path / "persons.parquet"
    pl.DataFrame({"id": ["p1", "p2"]}).write_parquet(path)
    assert scan_table(path, "persons").collect().height == 2
    assert scan_table(path, "persons").collect().height == 2
    assert calls == [path]
    pl.DataFrame({"id": ["p1", "p2", "p1"]}).write_parquet(path)  # rewritten in place, now with a duplicate
    with pytest.raises(DataSourceError, match="must be unique but 'p1' appears more than once"):
        scan_table(path, "persons")
    assert calls == [path, path]
