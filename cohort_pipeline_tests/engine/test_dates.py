"""Tests for :mod:`cohort_pipeline.engine.dates`.

Every expected instant below was worked out by hand from the spec (4.3, 5.2, 5.6, clarifications 12, 18, 19) and
well-known facts (1e9 s = 2001-09-09T01:46:40Z; Berlin is UTC+1 in winter and UTC+2 from 2021-03-28 01:00 UTC to
2021-10-31 01:00 UTC; New York is UTC-5 in winter and UTC-4 from 2021-03-14 07:00 UTC to 2021-11-07 06:00 UTC;
Kolkata is UTC+5:30 all year), never printed from the code under test.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from cohort_pipeline.engine import dates
from cohort_pipeline.engine.dates import (
    REWRITES,
    RELATIVE_UNITS,
    align_window_start,
    day_aligned_window,
    end_of_day,
    exact_window,
    is_relative_date,
    is_valid_date_filter_value,
    parse_datetime_column,
    parse_datetime_value,
    relative_date_unit,
    resolve_relative_date,
    shift,
    start_of_day,
    start_of_hour,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"


def utc(text: str) -> datetime:
    """An aware UTC datetime from ISO text written without the Z (test tables stay short)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC"))


def parse_column(values: list[Any], timezone: str = "UTC") -> list[datetime | None]:
    frame = pl.DataFrame({"text": values}, schema={"text": pl.String})
    return frame.select(parse_datetime_column(pl.col("text"), timezone)).to_series().to_list()


def parse_one(text: str | None, timezone: str = "UTC") -> datetime | None:
    return parse_column([text], timezone)[0]


# --------------------------------------------------------------------------------------------------------------------
# Column parsing: formats
# --------------------------------------------------------------------------------------------------------------------

ISO_8601 = [
    ("2021-04-01", "2021-04-01T00:00:00"),
    ("2020-02-29", "2020-02-29T00:00:00"),
    ("2021-04-01T19:00:00", "2021-04-01T19:00:00"),
    ("2021-04-01 19:00:00", "2021-04-01T19:00:00"),
    ("2021-04-01T19:00:00Z", "2021-04-01T19:00:00"),
    ("2021-04-01t19:00:00z", "2021-04-01T19:00:00"),
    ("2021-04-01T19:00", "2021-04-01T19:00:00"),
    ("2021-04-01 19:00Z", "2021-04-01T19:00:00"),
    ("2021-4-1", "2021-04-01T00:00:00"),
    ("2021-4-1 9:05:07", "2021-04-01T09:05:07"),
    ("2021-04-01T9:05", "2021-04-01T09:05:00"),
    ("  2021-04-01T19:00:00Z  ", "2021-04-01T19:00:00"),
]

OFFSETS = [
    ("2021-04-01T19:00:00+02:00", "2021-04-01T17:00:00"),
    ("2021-04-01T19:00:00+0200", "2021-04-01T17:00:00"),
    ("2021-04-01T19:00:00+02", "2021-04-01T17:00:00"),
    ("2021-04-01T19:00:00-05:30", "2021-04-02T00:30:00"),
    ("2021-04-01T19:00:00-00:00", "2021-04-01T19:00:00"),
    ("2021-04-01T00:30:00+01:00", "2021-03-31T23:30:00"),
    ("2021-04-01T19:00:00.123+05:30", "2021-04-01T13:30:00.123000"),
    ("2021-04-01 19:00:00 +02:00", "2021-04-01T17:00:00"),
    ("2021-04-01T19:00+02:00", "2021-04-01T17:00:00"),
    ("2021-04-01 19:00:00 UTC", "2021-04-01T19:00:00"),
    ("2021-04-01 19:00:00 GMT", "2021-04-01T19:00:00"),
    ("2021-04-01 19:00:00 EST", "2021-04-02T00:00:00"),
    ("2021-04-01 19:00:00 PDT", "2021-04-02T02:00:00"),
]

FRACTIONS = [  # microsecond precision; more digits are truncated, as DateTime64(6)
    ("2021-04-01T19:00:00.5Z", "2021-04-01T19:00:00.500000"),
    ("2021-04-01T19:00:00,25Z", "2021-04-01T19:00:00.250000"),
    ("2021-04-01T19:00:00.000001Z", "2021-04-01T19:00:00.000001"),
    ("2021-04-01T19:00:00.123456", "2021-04-01T19:00:00.123456"),
    ("2021-04-01T19:00:00.1234567Z", "2021-04-01T19:00:00.123456"),
    ("2021-04-01T19:00:00.999999999Z", "2021-04-01T19:00:00.999999"),
]

UNIX = [
    ("1000000000.5", "2001-09-09T01:46:40.500000"),
    ("1000000000.000001", "2001-09-09T01:46:40.000001"),
    ("1000000000.1234567", "2001-09-09T01:46:40.123456"),
    ("1000000000123", "2001-09-09T01:46:40.123000"),
    ("1617300000", "2021-04-01T18:00:00"),
]

#: Seconds or milliseconds is decided by the digit count, as ClickHouse's parseDateTime64BestEffort does: 9-10
#: digits are seconds, 13 milliseconds, anything else no timestamp (8 digits read as a yyyymmdd date).
DIGIT_COUNTS = [
    ("7840800", None),  # 7: conformance case 161 expects 1970-04-01 (in seconds) to be unparseable
    ("99999999", None),  # 8: yyyymmdd with month 99
    ("20210401", "2021-04-01T00:00:00"),  # 8: yyyymmdd
    ("100000000", "1973-03-03T09:46:40"),  # 9: seconds
    ("1000000000", "2001-09-09T01:46:40"),  # 10: seconds
    ("10000000000", None),  # 11
    ("100000000000", None),  # 12
    ("1000000000000", "2001-09-09T01:46:40"),  # 13: milliseconds
    ("10000000000000", None),  # 14
]

DAY_FIRST_AND_SLASHES = [
    ("01-04-2021", "2021-04-01T00:00:00"),
    ("01/04/2021", "2021-04-01T00:00:00"),
    ("01.04.2021", "2021-04-01T00:00:00"),
    ("1/4/2021", "2021-04-01T00:00:00"),
    ("13/01/2021", "2021-01-13T00:00:00"),
    ("01-04-2021 19:00:00", "2021-04-01T19:00:00"),
    ("01/04/2021 19:00", "2021-04-01T19:00:00"),
    ("01/04/2021 19:00:00+02:00", "2021-04-01T17:00:00"),
    ("31/03/2021 18:12:12.000012", "2021-03-31T18:12:12.000012"),
    ("2021/04/01", "2021-04-01T00:00:00"),
    ("2021/04/01 19:00:00", "2021-04-01T19:00:00"),
    ("2021/4/1 19:00", "2021-04-01T19:00:00"),
    ("2021.04.01", "2021-04-01T00:00:00"),
    ("20210401", "2021-04-01T00:00:00"),
    ("20210401 19:00:00", "2021-04-01T19:00:00"),
]

RFC_822 = [
    ("Wed, 02 Oct 2002 15:00:00 +0200", "2002-10-02T13:00:00"),
    ("Wed, 02 Oct 2002 15:00:00 GMT", "2002-10-02T15:00:00"),
    ("Wed, 02 Oct 2002 08:00:00 EST", "2002-10-02T13:00:00"),
    ("Wed, 02 Oct 2002 08:00:00 EDT", "2002-10-02T12:00:00"),
    ("02 Oct 2002 15:00:00 -0500", "2002-10-02T20:00:00"),
    ("Wed, 2 Oct 2002 15:00 +0200", "2002-10-02T13:00:00"),
    ("Wednesday, 02 October 2002 15:00:00 +0200", "2002-10-02T13:00:00"),
    ("wed, 02 oct 2002 15:00:00 +0200", "2002-10-02T13:00:00"),
    ("02 Oct 2002", "2002-10-02T00:00:00"),
]

INVALID = [
    "",
    "   ",
    "abc",
    "true",
    "null",
    "5",
    "50",
    "1.5",
    "2021",
    "April 1, 2021",
    "2021-13-01",
    "2021-02-29",  # not a leap year
    "2021-02-30",
    "2021-04-31",
    "31/02/2021",
    "01/13/2021",  # month-first (US) is not read: the month would be 13
    "20211301",
    "2021-04-01T24:00:00",
    "2021-04-01T23:60:00",
    "2021-04-01T10:00:00+25:00",
    "2021-04-01T10:00:00+02:60",
    "2021-04-01T10:00:00.Z",
    "2021-04-01Z",
    "2021-04-01 10:00:00 garbage",
    "2021-04-01T19:00:00 +02:00 extra",
    "Wed, 02 Foo 2002 15:00:00 +0200",
    "Mon, 31 Feb 2002 15:00:00 +0200",
    # numbers that are not unix timestamps (digit counts ClickHouse does not read as one)
    "1000000000000.5",
    "-1000000000",
    "+1000000000",
    "1e9",
    "1000000000.",
    # digits are ASCII digits
    "\uff12\uff10\uff12\uff11-\uff10\uff14-\uff10\uff11",  # full-width 2021-04-01
    "\u0661\u0666\u0661\u0667\u0663\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic 1617300000
]


@pytest.mark.parametrize(
    ("text", "expected"), ISO_8601 + OFFSETS + FRACTIONS + UNIX + DAY_FIRST_AND_SLASHES + RFC_822
)
def test_parse_column_reads_every_format(text: str, expected: str) -> None:
    assert parse_one(text) == utc(expected)


@pytest.mark.parametrize("text", INVALID)
def test_parse_column_unparseable_is_null(text: str) -> None:
    assert parse_one(text) is None


@pytest.mark.parametrize(("text", "expected"), DIGIT_COUNTS)
def test_seconds_or_milliseconds_by_digit_count(text: str, expected: str | None) -> None:
    assert parse_one(text) == (None if expected is None else utc(expected))


def test_parse_column_null_stays_null_and_dtype_is_utc_microseconds() -> None:
    frame = pl.DataFrame({"when": [None, "2021-04-01"]}, schema={"when": pl.String})
    out = frame.select(parse_datetime_column(pl.col("when"), "UTC"))
    assert out.schema == {"when": pl.Datetime("us", "UTC")}  # keeps the column name
    assert out["when"].to_list() == [None, utc("2021-04-01T00:00:00")]


def test_parse_column_mixed_formats_in_one_column() -> None:
    values = ["2021-04-01T19:00:00Z", "1617303600", "01/04/2021 19:00:00", "Thu, 01 Apr 2021 21:00:00 +0200", "x"]
    expected = [utc("2021-04-01T19:00:00")] * 4 + [None]
    assert parse_column(values) == expected


def test_parse_column_accepts_non_string_columns_as_their_text() -> None:
    frame = pl.DataFrame({"ts": [1617300000, 7840800]})
    assert frame.select(parse_datetime_column(pl.col("ts"), "UTC"))["ts"].to_list() == [
        utc("2021-04-01T18:00:00"),
        None,
    ]


@pytest.mark.parametrize("rewrite", REWRITES, ids=lambda rewrite: rewrite.name)
def test_each_rewrite_does_what_its_example_says(rewrite: dates.Rewrite) -> None:
    before, after = rewrite.example
    assert pl.select(rewrite.apply(pl.lit(before))).item() == after


# --------------------------------------------------------------------------------------------------------------------
# Column parsing: the project timezone
# --------------------------------------------------------------------------------------------------------------------

TIMEZONE_CASES = [
    # values without an offset are wall-clock times in the project timezone
    (BERLIN, "2021-01-15 12:00:00", "2021-01-15T11:00:00"),
    (BERLIN, "2021-07-01 12:00:00", "2021-07-01T10:00:00"),
    (BERLIN, "2021-04-01", "2021-03-31T22:00:00"),
    (BERLIN, "01/04/2021 19:00:00", "2021-04-01T17:00:00"),
    # spring forward: 02:00-03:00 does not exist; like Python's fold=0 it keeps the winter offset
    (BERLIN, "2021-03-28 02:30:00", "2021-03-28T01:30:00"),
    (BERLIN, "2021-03-28 03:30:00", "2021-03-28T01:30:00"),
    # fall back: 02:00-03:00 happens twice; the first occurrence (summer time) wins
    (BERLIN, "2021-10-31 02:30:00", "2021-10-31T00:30:00"),
    (BERLIN, "2021-10-31 03:30:00", "2021-10-31T02:30:00"),
    (NEW_YORK, "2021-07-04", "2021-07-04T04:00:00"),
    (NEW_YORK, "2021-12-25 18:00:00", "2021-12-25T23:00:00"),
    (NEW_YORK, "2021-03-14 02:30:00", "2021-03-14T07:30:00"),
    (NEW_YORK, "2021-11-07 01:30:00", "2021-11-07T05:30:00"),
    (KOLKATA, "2021-04-01 00:00:00", "2021-03-31T18:30:00"),
    # midnight skipped (Sao Paulo, 2018-11-04 00:00 -03 -> 01:00 -02): the day starts at 01:00 local
    ("America/Sao_Paulo", "2018-11-04", "2018-11-04T03:00:00"),
    # explicit offsets and unix timestamps are instants whatever the project timezone
    (BERLIN, "2021-04-01T12:00:00Z", "2021-04-01T12:00:00"),
    (NEW_YORK, "2021-04-01T12:00:00+02:00", "2021-04-01T10:00:00"),
    (NEW_YORK, "Wed, 02 Oct 2002 15:00:00 +0200", "2002-10-02T13:00:00"),
    (BERLIN, "1617300000", "2021-04-01T18:00:00"),
    (NEW_YORK, "1641977394339", "2022-01-12T08:49:54.339000"),
]


@pytest.mark.parametrize(("timezone", "text", "expected"), TIMEZONE_CASES)
def test_parse_column_in_project_timezone(timezone: str, text: str, expected: str) -> None:
    assert parse_one(text, timezone) == utc(expected)


@pytest.mark.parametrize(
    "wall",
    [
        datetime(2021, 3, 28, 1, 59),
        datetime(2021, 3, 28, 2, 0),
        datetime(2021, 3, 28, 2, 59, 59, 999999),
        datetime(2021, 3, 28, 3, 0),
        datetime(2021, 10, 31, 1, 59),
        datetime(2021, 10, 31, 2, 0),
        datetime(2021, 10, 31, 2, 59),
        datetime(2021, 10, 31, 3, 0),
    ],
)
def test_parse_column_resolves_dst_edges_like_python_fold_0(wall: datetime) -> None:
    """The scalar calendar helpers use zoneinfo (fold=0); the column parser must agree with them."""
    expected = wall.replace(tzinfo=ZoneInfo(BERLIN)).astimezone(ZoneInfo("UTC"))
    assert parse_one(wall.isoformat(sep=" "), BERLIN) == expected


def test_unknown_timezone_is_rejected_early() -> None:
    with pytest.raises(ValueError, match="Unknown timezone"):
        parse_datetime_column(pl.col("x"), "Mars/Olympus_Mons")


# --------------------------------------------------------------------------------------------------------------------
# Conformance: every value found in the pf_* cases, and their is_date_* outcomes
# --------------------------------------------------------------------------------------------------------------------

#: Each person property value of the pf_* conformance cases (as JSON text, the way the engine extracts it) and the
#: instant it denotes with the project in UTC, worked out by hand (2021-04-01T00:00Z = 1617235200).
CONFORMANCE_VALUES: dict[str, str | None] = {
    "test@posthog.com": None,
    "mongo@example.com": None,
    "some_val": None,
    "50": None,
    "5": None,
    "1617300000": "2021-04-01T18:00:00",
    "1617303600": "2021-04-01T19:00:00",
    "2021-04-01 18:00:00": "2021-04-01T18:00:00",
    "2021-04-01 19:00:00": "2021-04-01T19:00:00",
    "2021-04-04": "2021-04-04T00:00:00",
    "2021-04-06": "2021-04-06T00:00:00",
    "1639427152.339": "2021-12-13T20:25:52.339000",
    "1641977394339": "2022-01-12T08:49:54.339000",
    "Wed, 02 Oct 2002 15:00:00 +0200": "2002-10-02T13:00:00",
    "2021-04-01T19:00:00": "2021-04-01T19:00:00",
    "01-04-2021 19:00:00": "2021-04-01T19:00:00",
    "2021/04/01 19:00:00": "2021-04-01T19:00:00",
    "01/04/2021 19:00:00": "2021-04-01T19:00:00",
    "7840800": None,  # 7 digits: not a unix timestamp (case 161)
    "323460000": "1980-04-01T18:00:00",
    "01/04/2021": "2021-04-01T00:00:00",
    "02/04/2021": "2021-04-02T00:00:00",
    "31/03/2021 18:00:00": "2021-03-31T18:00:00",
    "1617199200": "2021-03-31T14:00:00",
    "31/03/2021 18:12:12.000012": "2021-03-31T18:12:12.000012",
    "31/03/2021 23:59:59.000012": "2021-03-31T23:59:59.000012",
}


@pytest.mark.parametrize(("text", "expected"), list(CONFORMANCE_VALUES.items()))
def test_conformance_property_values(text: str, expected: str | None) -> None:
    assert parse_one(text) == (None if expected is None else utc(expected))


#: The pf_* persons (id -> properties) and date cases: (key, operator, filter value, expected members).
CONFORMANCE_PERSONS: dict[str, dict[str, Any]] = {
    "e05": {"unix_timestamp": 1617300000},
    "e06": {"unix_timestamp": 1617303600},
    "e07": {"long_date": "2021-04-01 18:00:00"},
    "e08": {"long_date": "2021-04-01 19:00:00"},
    "e09": {"short_date": "2021-04-04"},
    "e10": {"short_date": "2021-04-06"},
    "e11": {"sdk_$time": 1639427152.339},
    "e12": {"unix_timestamp_milliseconds": 1641977394339},
    "e13": {"rfc_822_time": "Wed, 02 Oct 2002 15:00:00 +0200"},
    "e14": {"iso_8601_$time": "2021-04-01T19:00:00"},
    "e15": {"full_date_increasing_$time": "01-04-2021 19:00:00"},
    "e16": {"with_slashes_$time": "2021/04/01 19:00:00"},
    "e17": {"with_slashes_increasing_$time": "01/04/2021 19:00:00"},
    "e18": {"unix_timestamp": 7840800},
    "e19": {"unix_timestamp": 323460000},
    "e20": {"date_only": "01/04/2021"},
    "e21": {"date_only": "01/04/2021"},
    "e22": {"date_only": "02/04/2021"},
    "e23": {"date_only_matched_against_date_and_time": "31/03/2021 18:00:00"},
    "e24": {"date_only_matched_against_date_and_time": 1617199200},
    "e25": {"date_exact_including_seconds_and_milliseconds": "31/03/2021 18:12:12.000012"},
    "e26": {"date_exact_including_seconds_and_milliseconds": "31/03/2021 23:59:59.000012"},
}

CONFORMANCE_DATE_CASES = [
    ("161", "unix_timestamp", "is_date_before", "2021-04-02", ["e05", "e06", "e19"]),
    ("164", "unix_timestamp", "is_date_after", "2021-04-01 18:30:00", ["e06"]),
    ("167", "long_date", "is_date_before", "2021-04-01 18:30:00", ["e07"]),
    ("170", "short_date", "is_date_after", "2021-04-05", ["e10"]),
    ("173", "sdk_$time", "is_date_before", "2021-12-25", ["e11"]),
    ("176", "rfc_822_time", "is_date_before", "2002-10-02 17:01:00", ["e13"]),
    ("179", "iso_8601_$time", "is_date_before", "2021-04-01 20:00:00", ["e14"]),
    ("182", "full_date_increasing_$time", "is_date_after", "2021-04-01 18:00:00", ["e15"]),
    ("185", "with_slashes_increasing_$time", "is_date_before", "2021-04-01 20:00:00", ["e17"]),
    ("191", "date_only", "is_date_after", "2021-04-01", ["e22"]),
]

_COMPARE = {"is_date_before": lambda a, b: a < b, "is_date_after": lambda a, b: a > b}
_CONFORMANCE_NOW = utc("2021-04-01T01:00:00")


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _date_members(persons: dict[str, dict[str, Any]], key: str, operator: str, value: str) -> list[str]:
    ids = [pid for pid, props in persons.items() if props.get(key) is not None]
    texts = [_json_text(persons[pid][key]) for pid in ids]
    frame = pl.DataFrame({"id": ids, "text": texts}, schema={"id": pl.String, "text": pl.String})
    instant = parse_datetime_value(value, now=_CONFORMANCE_NOW, timezone="UTC")
    assert instant is not None
    matched = frame.filter(_COMPARE[operator](parse_datetime_column(pl.col("text"), "UTC"), pl.lit(instant)))
    return sorted(matched["id"].to_list())


@pytest.mark.parametrize(("case", "key", "operator", "value", "expected"), CONFORMANCE_DATE_CASES)
def test_conformance_date_cases(case: str, key: str, operator: str, value: str, expected: list[str]) -> None:
    assert _date_members(CONFORMANCE_PERSONS, key, operator, value) == expected


_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"


def _pf_cases() -> list[Path]:
    return sorted(_FIXTURES.glob("*_pf_*.json"))


def _pf_date_cases() -> list[Path]:
    return [
        path
        for path in _pf_cases()
        if json.loads(path.read_text())["cohort"]["filters"]["properties"]["values"][0]["operator"] in _COMPARE
    ]


@pytest.mark.skipif(not _pf_cases(), reason="conformance fixtures not present")
def test_every_pf_fixture_value_is_in_the_hand_checked_table() -> None:
    """New fixture values must get a hand-worked instant above before they count as covered."""
    found = {
        _json_text(value)
        for path in _pf_cases()
        for person in json.loads(path.read_text())["persons"]
        for value in person["properties"].values()
    }
    assert found <= set(CONFORMANCE_VALUES)


@pytest.mark.skipif(not _pf_date_cases(), reason="conformance fixtures not present")
@pytest.mark.parametrize("path", _pf_date_cases(), ids=lambda path: path.stem)
def test_pf_fixture_date_cases(path: Path) -> None:
    """The fixture files themselves (copied from the shared conformance set), read directly."""
    case = json.loads(path.read_text())
    (leaf,) = case["cohort"]["filters"]["properties"]["values"]
    persons = {person["id"]: person["properties"] for person in case["persons"]}
    assert _date_members(persons, leaf["key"], leaf["operator"], leaf["value"]) == case["expected_members"]


# --------------------------------------------------------------------------------------------------------------------
# Filter values: relative dates and scalars
# --------------------------------------------------------------------------------------------------------------------

NOW = utc("2024-06-15T12:00:00")

RELATIVE_UTC = [
    ("-7d", "2024-06-08T12:00:00"),
    ("7d", "2024-06-08T12:00:00"),  # the sign is optional: always in the past, as PostHog
    ("30d", "2024-05-16T12:00:00"),
    ("-1w", "2024-06-08T12:00:00"),
    ("2w", "2024-06-01T12:00:00"),
    ("-1m", "2024-05-15T12:00:00"),  # m = months
    ("2m", "2024-04-15T12:00:00"),
    ("-12m", "2023-06-15T12:00:00"),
    ("-3M", "2024-06-15T11:57:00"),  # M = minutes
    ("90M", "2024-06-15T10:30:00"),
    ("1q", "2024-03-16T12:00:00"),  # q = 13 weeks = 91 days
    ("-2q", "2023-12-16T12:00:00"),  # 182 days
    ("1y", "2023-06-15T12:00:00"),
    ("-24h", "2024-06-14T12:00:00"),
    ("-90s", "2024-06-15T11:58:30"),
    ("0d", "2024-06-15T12:00:00"),
    # upper-case letters other than M are aliases of the lower-case units
    ("-7D", "2024-06-08T12:00:00"),
    ("-1W", "2024-06-08T12:00:00"),
    ("-1Q", "2024-03-16T12:00:00"),
    ("-1Y", "2023-06-15T12:00:00"),
    ("-5H", "2024-06-15T07:00:00"),
]


@pytest.mark.parametrize(("value", "expected"), RELATIVE_UTC)
def test_relative_values(value: str, expected: str) -> None:
    assert parse_datetime_value(value, now=NOW, timezone="UTC") == utc(expected)


RELATIVE_CALENDAR = [
    # (now, value, timezone, expected): no truncation, calendar months, wall clock across DST
    ("2024-06-15T12:00:00.123456", "-1d", "UTC", "2024-06-14T12:00:00.123456"),
    ("2024-03-31T12:00:00", "-1m", "UTC", "2024-02-29T12:00:00"),
    ("2023-03-31T12:00:00", "1m", "UTC", "2023-02-28T12:00:00"),
    ("2024-02-29T12:00:00", "-1y", "UTC", "2023-02-28T12:00:00"),
    # Berlin, 2021-03-28 14:00 CEST: one day back is 14:00 CET the day before, 23 real hours
    ("2021-03-28T12:00:00", "-1d", BERLIN, "2021-03-27T13:00:00"),
    ("2021-03-28T12:00:00", "-24h", BERLIN, "2021-03-27T13:00:00"),  # hours are wall clock too (PostHog)
    ("2021-03-28T12:00:00", "-1w", BERLIN, "2021-03-21T13:00:00"),
    # landing in the skipped hour: 2021-03-28 02:30 does not exist -> winter offset (fold=0)
    ("2021-03-29T00:30:00", "-1d", BERLIN, "2021-03-28T01:30:00"),
    # New York, 2021-11-07 12:00 EST: one day back is 12:00 EDT, 25 real hours
    ("2021-11-07T17:00:00", "-1d", NEW_YORK, "2021-11-06T16:00:00"),
    ("2021-03-15T16:00:00", "-1d", NEW_YORK, "2021-03-14T16:00:00"),
    ("2021-03-15T16:00:00", "-2d", NEW_YORK, "2021-03-13T17:00:00"),
    ("2021-11-07T17:00:00", "-1m", NEW_YORK, "2021-10-07T16:00:00"),
]


@pytest.mark.parametrize(("now", "value", "timezone", "expected"), RELATIVE_CALENDAR)
def test_relative_values_use_calendar_arithmetic_in_project_timezone(
    now: str, value: str, timezone: str, expected: str
) -> None:
    assert parse_datetime_value(value, now=utc(now), timezone=timezone) == utc(expected)


SCALARS = [
    # (value, timezone, expected)
    ("2021-04-01", "UTC", "2021-04-01T00:00:00"),
    ("2021-04-01", BERLIN, "2021-03-31T22:00:00"),  # a date alone is midnight in the project timezone
    ("2021-04-01", NEW_YORK, "2021-04-01T04:00:00"),
    ("2021-04-01 18:30:00", BERLIN, "2021-04-01T16:30:00"),
    ("2021-04-01T18:30:00Z", BERLIN, "2021-04-01T18:30:00"),
    ("2021-04-01T18:30:00.000001+00:00", "UTC", "2021-04-01T18:30:00.000001"),
    ("01/04/2021", "UTC", "2021-04-01T00:00:00"),
    ("Wed, 02 Oct 2002 15:00:00 +0200", "UTC", "2002-10-02T13:00:00"),
    ("1617300000", "UTC", "2021-04-01T18:00:00"),
    (1617300000, "UTC", "2021-04-01T18:00:00"),
    (1617300000.0, "UTC", "2021-04-01T18:00:00"),
    (1639427152.339, "UTC", "2021-12-13T20:25:52.339000"),
    (1641977394339, "UTC", "2022-01-12T08:49:54.339000"),
    (datetime(2021, 4, 1, 19, 0, tzinfo=ZoneInfo("UTC")), BERLIN, "2021-04-01T19:00:00"),
    (datetime(2021, 4, 1, 19, 0), BERLIN, "2021-04-01T17:00:00"),
    (date(2021, 4, 1), BERLIN, "2021-03-31T22:00:00"),
]


@pytest.mark.parametrize(("value", "timezone", "expected"), SCALARS)
def test_parse_datetime_value_absolute(value: Any, timezone: str, expected: str) -> None:
    parsed = parse_datetime_value(value, now=NOW, timezone=timezone)
    assert parsed == utc(expected)
    assert parsed is not None and parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "value",
    [None, True, False, 7840800, -5, 1e-5, float("nan"), [], ["2021-04-01"], {}, "", "abc", "-7days", "7", "-7S"],
)
def test_parse_datetime_value_unparseable_is_none(value: Any) -> None:
    assert parse_datetime_value(value, now=NOW, timezone="UTC") is None


def test_values_outside_pythons_calendar_are_none() -> None:
    assert resolve_relative_date("-999999999y", now=NOW, timezone="UTC") is None
    assert parse_datetime_value("9999-12-31T23:59:59-23:59", now=NOW, timezone="UTC") is None  # year 10000
    assert parse_datetime_value("0001-01-01", now=NOW, timezone=BERLIN) is None  # 0000-12-31T23:00Z
    assert parse_datetime_value("0001-01-01", now=NOW, timezone="UTC") == utc("0001-01-01T00:00:00")


def test_relative_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_datetime_value("-7d", now=datetime(2024, 6, 15, 12), timezone="UTC")


def test_relative_units_cover_the_spec_letter_class() -> None:
    assert set(RELATIVE_UNITS) == set("hdwmqysHDWMQY")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-7d", True),
        ("7d", True),
        ("30d", True),
        ("2m", True),
        ("3M", True),
        ("1q", True),
        ("-1y", True),
        ("-24h", True),
        ("-90s", True),
        ("-7D", True),
        (" -7d ", True),
        ("-7S", False),  # S is not in the spec's letter class
        ("-7", False),
        ("d", False),
        ("-d", False),
        ("7days", False),
        ("-7dStart", False),
        ("+7d", False),
        ("--7d", False),
        ("7.5d", False),
        ("2021-04-01", False),
        (7, False),
        (None, False),
    ],
)
def test_is_relative_date(value: Any, expected: bool) -> None:
    assert is_relative_date(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-7d", True),
        ("30d", True),
        ("-3M", True),
        ("2024-01-15", True),
        ("2024-01-15T10:00:00Z", True),
        ("2024-01-15 10:00:00", True),
        ("01/04/2021", True),  # every format the engine reads, a superset of ISO-8601
        ("1617300000", True),
        (1617300000, True),
        (["-7d", "2024-01-15"], True),
        ([], True),  # an empty list makes the leaf always true (clarification 13)
        (["-7d", "nope"], False),
        ("yesterday", False),
        ("", False),
        ("abc", False),
        ("2024-13-01", False),
        ("-7days", False),
        (None, False),
        (True, False),
        ({"a": 1}, False),
    ],
)
def test_is_valid_date_filter_value(value: Any, expected: bool) -> None:
    assert is_valid_date_filter_value(value) is expected


# --------------------------------------------------------------------------------------------------------------------
# Calendar helpers for behavioural windows
# --------------------------------------------------------------------------------------------------------------------

SHIFTS = [
    # (now, n, unit, timezone, expected)
    ("2024-06-15T12:00:00", -30, "minute", "UTC", "2024-06-15T11:30:00"),  # minutes, not months (decision 3)
    ("2024-06-15T12:00:00", -90, "second", "UTC", "2024-06-15T11:58:30"),
    ("2024-06-15T12:00:00", -2, "hour", "UTC", "2024-06-15T10:00:00"),
    ("2024-06-15T12:00:00", -1, "day", "UTC", "2024-06-14T12:00:00"),
    ("2024-06-15T12:00:00", 1, "day", "UTC", "2024-06-16T12:00:00"),
    ("2024-06-15T12:00:00", -1, "week", "UTC", "2024-06-08T12:00:00"),
    ("2024-06-15T12:00:00", -1, "month", "UTC", "2024-05-15T12:00:00"),
    ("2024-06-15T12:00:00", -1, "year", "UTC", "2023-06-15T12:00:00"),
    ("2024-03-31T12:00:00", -1, "month", "UTC", "2024-02-29T12:00:00"),
    ("2024-06-15T12:00:00.000001", -1, "day", "UTC", "2024-06-14T12:00:00.000001"),
    # DST: same local time the day before / after: 23 or 25 real hours
    ("2021-03-28T12:00:00", -1, "day", BERLIN, "2021-03-27T13:00:00"),
    ("2021-03-27T13:00:00", 1, "day", BERLIN, "2021-03-28T12:00:00"),
    ("2021-03-28T12:00:00", -24, "hour", BERLIN, "2021-03-27T13:00:00"),
    ("2021-11-07T17:00:00", -1, "day", NEW_YORK, "2021-11-06T16:00:00"),
    ("2021-11-06T16:00:00", 1, "day", NEW_YORK, "2021-11-07T17:00:00"),
    # zero keeps the instant, even in the repeated hour (01:30 EST, second pass)
    ("2021-11-07T06:30:00", 0, "hour", NEW_YORK, "2021-11-07T06:30:00"),
]


@pytest.mark.parametrize(("now", "n", "unit", "timezone", "expected"), SHIFTS)
def test_shift(now: str, n: int, unit: str, timezone: str, expected: str) -> None:
    assert shift(utc(now), n, unit, timezone) == utc(expected)


@pytest.mark.parametrize(
    ("now", "timezone", "real_hours"),
    [
        ("2021-03-28T12:00:00", BERLIN, 23),  # spring forward: the local day before is 23 hours away
        ("2021-11-07T17:00:00", NEW_YORK, 25),  # fall back: 25 hours
        ("2021-06-15T12:00:00", BERLIN, 24),
    ],
)
def test_one_day_back_is_the_same_local_time(now: str, timezone: str, real_hours: int) -> None:
    before = shift(utc(now), -1, "day", timezone)
    local_now, local_before = utc(now).astimezone(ZoneInfo(timezone)), before.astimezone(ZoneInfo(timezone))
    assert local_before.time() == local_now.time()
    assert (local_now.date() - local_before.date()).days == 1
    assert utc(now) - before == timedelta(hours=real_hours)


def test_shift_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="Invalid interval: fortnight"):
        shift(NOW, -1, "fortnight", "UTC")
    with pytest.raises(ValueError, match="timezone-aware"):
        shift(datetime(2024, 6, 15, 12), -1, "day", "UTC")
    with pytest.raises(ValueError, match="Unknown timezone"):
        shift(NOW, -1, "day", "Nowhere/Special")


@pytest.mark.parametrize(
    ("moment", "timezone", "expected"),
    [
        ("2024-06-15T12:00:00", "UTC", "2024-06-15T00:00:00"),
        ("2021-03-28T12:00:00", BERLIN, "2021-03-27T23:00:00"),  # midnight CET, the day is 23 hours long
        ("2021-03-27T23:30:00", BERLIN, "2021-03-27T23:00:00"),  # 00:30 local on the 28th
        ("2021-11-07T17:00:00", NEW_YORK, "2021-11-07T04:00:00"),  # midnight EDT
        ("2021-11-07T03:30:00", NEW_YORK, "2021-11-06T04:00:00"),  # 23:30 local on the 6th
        ("2024-06-15T20:00:00", KOLKATA, "2024-06-15T18:30:00"),  # 01:30 IST on the 16th
        ("2018-11-04T12:00:00", "America/Sao_Paulo", "2018-11-04T03:00:00"),  # midnight skipped: 01:00 -02
    ],
)
def test_start_of_day(moment: str, timezone: str, expected: str) -> None:
    assert start_of_day(utc(moment), timezone) == utc(expected)


@pytest.mark.parametrize(
    ("moment", "timezone", "expected"),
    [
        ("2024-06-15T12:34:56.789000", "UTC", "2024-06-15T12:00:00"),
        ("2024-06-15T12:34:00", KOLKATA, "2024-06-15T12:30:00"),  # 18:04 IST -> 18:00 IST
        ("2021-11-07T05:30:00", NEW_YORK, "2021-11-07T05:00:00"),  # 01:30 EDT (first pass)
        ("2021-11-07T06:30:00", NEW_YORK, "2021-11-07T06:00:00"),  # 01:30 EST (second pass)
    ],
)
def test_start_of_hour(moment: str, timezone: str, expected: str) -> None:
    assert start_of_hour(utc(moment), timezone) == utc(expected)


@pytest.mark.parametrize(
    ("moment", "timezone", "expected"),
    [
        ("2024-06-15T12:00:00", "UTC", "2024-06-15T23:59:59.999999"),
        ("2021-11-07T17:00:00", NEW_YORK, "2021-11-08T04:59:59.999999"),  # 23:59:59.999999 EST, a 25-hour day
        ("2021-03-28T12:00:00", BERLIN, "2021-03-28T21:59:59.999999"),  # 23:59:59.999999 CEST
    ],
)
def test_end_of_day(moment: str, timezone: str, expected: str) -> None:
    assert end_of_day(utc(moment), timezone) == utc(expected)


SPEC_NOW = "2025-03-15T14:30:00"  # spec 5.6

DAY_ALIGNED = [
    # (now, n, unit, timezone, lower, upper)  both inclusive
    (SPEC_NOW, 30, "day", "UTC", "2025-02-13T00:00:00", "2025-03-15T23:59:59.999999"),
    (SPEC_NOW, 24, "hour", "UTC", "2025-03-14T14:00:00", "2025-03-15T23:59:59.999999"),
    (SPEC_NOW, 7, "day", "UTC", "2025-03-08T00:00:00", "2025-03-15T23:59:59.999999"),
    (SPEC_NOW, 1, "week", "UTC", "2025-03-08T00:00:00", "2025-03-15T23:59:59.999999"),
    (SPEC_NOW, 1, "month", "UTC", "2025-02-15T00:00:00", "2025-03-15T23:59:59.999999"),
    (SPEC_NOW, 1, "year", "UTC", "2024-03-15T00:00:00", "2025-03-15T23:59:59.999999"),
    (SPEC_NOW, 30, "minute", "UTC", "2025-03-15T00:00:00", "2025-03-15T23:59:59.999999"),  # 30 min, day-aligned
    # Berlin (CET): 15:30 local; 30 days back is 2025-02-13 local
    (SPEC_NOW, 30, "day", BERLIN, "2025-02-12T23:00:00", "2025-03-15T22:59:59.999999"),
    # across the change: 2025-04-01 12:00 CEST, 7 days back is 2025-03-25 (CET)
    ("2025-04-01T10:00:00", 7, "day", BERLIN, "2025-03-24T23:00:00", "2025-04-01T21:59:59.999999"),
    # hour windows start at the local hour (clarification 19): 20:00 IST - 2 h = 18:00 IST
    (SPEC_NOW, 2, "hour", KOLKATA, "2025-03-15T12:30:00", "2025-03-15T18:29:59.999999"),
]


@pytest.mark.parametrize(("now", "n", "unit", "timezone", "lower", "upper"), DAY_ALIGNED)
def test_day_aligned_window(now: str, n: int, unit: str, timezone: str, lower: str, upper: str) -> None:
    assert day_aligned_window(utc(now), n, unit, timezone) == (utc(lower), utc(upper))


EXACT = [
    # (now, n, unit, timezone, lower, upper)  both exclusive; upper is now + 5 s
    (SPEC_NOW, 30, "day", "UTC", "2025-02-13T14:30:00", "2025-03-15T14:30:05"),
    (SPEC_NOW, 90, "minute", "UTC", "2025-03-15T13:00:00", "2025-03-15T14:30:05"),
    ("2021-03-28T12:00:00", 1, "day", BERLIN, "2021-03-27T13:00:00", "2021-03-28T12:00:05"),
]


@pytest.mark.parametrize(("now", "n", "unit", "timezone", "lower", "upper"), EXACT)
def test_exact_window(now: str, n: int, unit: str, timezone: str, lower: str, upper: str) -> None:
    assert exact_window(utc(now), n, unit, timezone) == (utc(lower), utc(upper))


@pytest.mark.parametrize("window", [day_aligned_window, exact_window])
def test_windows_reject_negative_lengths(window: Any) -> None:
    with pytest.raises(ValueError, match="negative"):
        window(NOW, -1, "day", "UTC")


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("-24h", "hour"),
        ("-5H", "hour"),
        ("-3M", "minute"),
        ("-90s", "second"),
        ("-7d", "day"),
        ("2w", "week"),
        ("1q", "week"),
        ("-2m", "month"),
        ("1y", "year"),
        ("2021-04-01", None),
        (None, None),
    ],
)
def test_relative_date_unit(value: Any, unit: str | None) -> None:
    assert relative_date_unit(value) == unit


@pytest.mark.parametrize(
    ("moment", "unit", "timezone", "expected"),
    [
        ("2025-03-14T14:30:00", "hour", "UTC", "2025-03-14T14:00:00"),
        ("2025-03-14T14:30:00", "day", "UTC", "2025-03-14T00:00:00"),
        ("2025-03-14T14:30:00", "minute", "UTC", "2025-03-14T00:00:00"),  # only hours keep the hour
        ("2025-03-14T14:30:00", "month", BERLIN, "2025-03-13T23:00:00"),
        ("2025-03-14T14:30:00", "hour", KOLKATA, "2025-03-14T14:30:00"),  # 20:00 IST exactly
    ],
)
def test_align_window_start(moment: str, unit: str, timezone: str, expected: str) -> None:
    assert align_window_start(utc(moment), unit, timezone) == utc(expected)
